"""A piece that first appeared elsewhere names the original as its canonical address:
in the page's head, its OpenGraph and JSON-LD, and by its absence from the sitemaps."""

import json
import re

import pytest
from django.core.exceptions import ValidationError

from outlet.pages.models import Page
from tests.factories import ArticleFactory

pytestmark = pytest.mark.django_db

ORIGINAL = "https://partner.example/2019/05/12/how-the-map-was-drawn/"


def canonical_of(text: str) -> list[str]:
    return re.findall(r'<link rel="canonical" href="([^"]*)">', text)


def test_an_article_first_published_elsewhere_points_search_engines_at_the_original(client):
    article = ArticleFactory(canonical_url=ORIGINAL)

    text = client.get(article.get_absolute_url()).content.decode()

    assert canonical_of(text) == [ORIGINAL]
    assert f'<meta property="og:url" content="{ORIGINAL}">' in text
    ld = re.search(r'<script type="application/ld\+json">(.*?)</script>', text, re.S)
    assert ld and json.loads(ld.group(1))["mainEntityOfPage"] == ORIGINAL


def test_an_article_without_a_canonical_url_is_its_own_canonical(client, settings):
    article = ArticleFactory()

    text = client.get(article.get_absolute_url()).content.decode()

    own = f"{settings.SITE_URL}/{article.slug}/"
    assert canonical_of(text) == [own]
    assert f'<meta property="og:url" content="{own}">' in text


def test_the_sitemaps_leave_out_articles_whose_original_is_elsewhere(client, settings):
    ours = ArticleFactory()
    theirs = ArticleFactory(canonical_url=ORIGINAL)
    # A canonical naming the article's own address here is still this site's article.
    self_named = ArticleFactory()
    self_named.canonical_url = f"{settings.SITE_URL}/{self_named.slug}/"
    self_named.save()

    sitemap = client.get("/sitemap.xml").content.decode()
    news = client.get("/sitemap-news.xml").content.decode()

    for text in (sitemap, news):
        assert f"{settings.SITE_URL}/{ours.slug}/" in text
        assert f"{settings.SITE_URL}/{self_named.slug}/" in text
        assert theirs.slug not in text


@pytest.mark.parametrize(
    "address",
    ["/2019/05/slug/", "ftp://partner.example/file", "javascript:alert(1)", "partner dot example"],
)
def test_a_canonical_url_must_be_a_full_web_address(address):
    article = ArticleFactory.build(canonical_url=address)
    page = Page(title="About", slug="about", canonical_url=address)

    for piece in (article, page):
        with pytest.raises(ValidationError) as raised:
            piece.full_clean(exclude=["section"])
        assert "canonical_url" in raised.value.message_dict


def test_a_page_first_published_elsewhere_points_search_engines_at_the_original(client):
    Page.objects.create(
        title="Our standards", slug="standards", status="published", canonical_url=ORIGINAL
    )

    text = client.get("/page/standards/").content.decode()

    assert canonical_of(text) == [ORIGINAL]
    assert "standards" not in client.get("/sitemap.xml").content.decode()
