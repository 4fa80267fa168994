"""Newsletter emails carry featured images at an email's width, not the upload's."""

import re

import pytest

from outlet.articles.services import article_save
from outlet.newsletters.sending.rendering import issue_render
from tests.articles.conftest import image_upload
from tests.factories import ArticleFactory, IssueFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def featured(size):
    article = ArticleFactory(image_alt="Voters queue at dawn")
    article.featured_image = image_upload(size=size)
    article_save(article=article)
    return article


def test_issue_email_sends_an_email_sized_rendition_with_a_sharp_2x():
    article = featured((2400, 1350))
    issue = IssueFactory(articles=[article])

    html = issue_render(issue=issue).html

    image = re.search(r"<img [^>]*>", html).group(0)
    assert re.search(r'src="http[^"]+\.w800\.jpg"', image)
    assert re.search(r'srcset="http[^"]+\.w800\.jpg 1x, http[^"]+\.w1200\.jpg 2x"', image)
    assert article.featured_image.url not in image  # never the 2400-px upload
    assert 'width="576"' in image and 'alt="Voters queue at dawn"' in image


def test_issue_email_sends_a_small_upload_as_it_is():
    article = featured((640, 360))
    issue = IssueFactory(articles=[article])

    image = re.search(r"<img [^>]*>", issue_render(issue=issue).html).group(0)

    assert article.featured_image.url in image
    assert "srcset" not in image
