"""Metadata for search engines and social networks; feeds; sitemaps."""

import json
import re
from datetime import timedelta
from xml.etree import ElementTree

import pytest
from django.utils import timezone

from tests.factories import ArticleFactory, AuthorFactory, SectionFactory

pytestmark = pytest.mark.django_db


def json_ld(text: str) -> dict:
    match = re.search(r'<script type="application/ld\+json">(.*?)</script>', text, re.S)
    assert match, "no JSON-LD on the page"
    return json.loads(match.group(1))


def test_article_page_has_title_description_canonical_open_graph_and_twitter(client, settings):
    article = ArticleFactory(headline="How the map was drawn", dek="Fair, but not competitive.")

    text = client.get(article.get_absolute_url()).content.decode()

    assert "<title>How the map was drawn | The Outlet</title>" in text
    assert '<meta name="description" content="Fair, but not competitive.">' in text
    canonical = f'<link rel="canonical" href="{settings.SITE_URL}/{article.slug}/">'
    assert canonical in text
    assert '<meta property="og:title" content="How the map was drawn">' in text
    assert '<meta property="og:type" content="article">' in text
    assert '<meta name="twitter:card" content="summary_large_image">' in text


def test_json_ld_describes_a_news_article_and_cannot_break_out_of_its_script(client):
    author = AuthorFactory(name="Paula Stein")
    article = ArticleFactory(
        headline="</script><script>alert(1)</script>", kind="news", authors=[author]
    )

    text = client.get(article.get_absolute_url()).content.decode()

    assert "</script><script>alert(1)" not in text
    data = json_ld(text)
    assert data["@type"] == "NewsArticle"
    assert data["headline"] == "</script><script>alert(1)</script>"
    assert data["author"][0]["name"] == "Paula Stein"
    assert data["datePublished"].startswith(str(article.publish_at.year))
    assert data["publisher"]["name"] == "The Outlet"
    assert data["image"]


def test_site_feed_lists_published_articles_newest_first(client):
    ArticleFactory(headline="Older", publish_at=timezone.now() - timedelta(days=2))
    ArticleFactory(headline="Newer")
    ArticleFactory(headline="Draft", status="draft")

    response = client.get("/feed/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/rss+xml")
    titles = [
        item.findtext("title")
        for item in ElementTree.fromstring(response.content).iter("item")  # noqa: S314
    ]
    assert titles == ["Newer", "Older"]


def test_atom_feed_and_section_and_author_feeds(client):
    politics = SectionFactory(name="Politics", slug="politics")
    maren = AuthorFactory(slug="maren")
    ArticleFactory(headline="In politics by Maren", section=politics, authors=[maren])
    ArticleFactory(headline="Elsewhere")

    atom = client.get("/feed/atom/")
    section = client.get("/section/politics/feed/").content.decode()
    author = client.get("/author/maren/feed/").content.decode()

    assert atom["Content-Type"].startswith("application/atom+xml")
    assert b"In politics by Maren" in atom.content
    assert "In politics by Maren" in section and "Elsewhere" not in section
    assert "In politics by Maren" in author and "Elsewhere" not in author
    assert client.get("/section/nowhere/feed/").status_code == 404


def test_sitemap_lists_public_articles_only(client, settings):
    public = ArticleFactory()
    draft = ArticleFactory(status="draft")
    scheduled = ArticleFactory(status="scheduled", publish_at=timezone.now() + timedelta(hours=1))

    text = client.get("/sitemap.xml").content.decode()

    assert f"<loc>{settings.SITE_URL}/{public.slug}/</loc>" in text
    assert draft.slug not in text and scheduled.slug not in text


def test_news_sitemap_has_only_the_last_48_hours(client):
    fresh = ArticleFactory(headline="Fresh news")
    old = ArticleFactory(publish_at=timezone.now() - timedelta(hours=49))

    response = client.get("/sitemap-news.xml")

    root = ElementTree.fromstring(response.content)  # noqa: S314 (our own output)
    news = "{http://www.google.com/schemas/sitemap-news/0.9}"
    titles = [element.text for element in root.iter(f"{news}title")]
    assert titles == ["Fresh news"]
    assert old.slug not in response.content.decode()
    assert fresh.slug in response.content.decode()


def test_robots_txt_points_at_both_sitemaps(client):
    text = client.get("/robots.txt").content.decode()

    assert "/sitemap.xml" in text and "/sitemap-news.xml" in text
