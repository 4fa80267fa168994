import pytest

from tests.factories import ArticleFactory, SectionFactory

pytestmark = pytest.mark.django_db


def test_home_page_shows_the_lead_and_latest_articles(client):
    lead = ArticleFactory(headline="The lead story")
    ArticleFactory(headline="An older story", publish_at=lead.publish_at.replace(year=2020))

    response = client.get("/")

    assert response.status_code == 200
    text = response.content.decode()
    assert "The lead story" in text
    assert "An older story" in text
    assert text.index("The lead story") < text.index("An older story")


def test_draft_articles_are_not_public(client):
    draft = ArticleFactory(status="draft", headline="Secret draft")

    assert "Secret draft" not in client.get("/").content.decode()
    assert client.get(draft.get_absolute_url()).status_code == 404


def test_article_page_shows_body_and_section_navigation(client):
    section = SectionFactory(name="Politics", slug="politics")
    article = ArticleFactory(section=section)

    response = client.get(article.get_absolute_url())

    assert response.status_code == 200
    assert b"<h2>A subheading</h2>" in response.content
    assert b'href="/section/politics/"' in response.content


def test_robots_txt_points_at_the_sitemap(client):
    response = client.get("/robots.txt")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert b"Sitemap: " in response.content


def test_unknown_page_is_a_friendly_404(client, settings):
    settings.DEBUG = False
    response = client.get("/no-such-article-here/")

    assert response.status_code == 404
    assert b"couldn't find that page" in response.content
