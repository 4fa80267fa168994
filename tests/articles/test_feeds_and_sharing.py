"""What feed readers and social networks are told: the Atom feed is advertised, each
co-author is an author of their own, shared images say their size, and the publisher
in JSON-LD has a logo."""

import json
import re
from xml.etree import ElementTree

import pytest

from outlet.articles.services import article_save
from tests.articles.conftest import image_upload
from tests.factories import ArticleFactory, AuthorFactory, SectionFactory

pytestmark = pytest.mark.django_db

ATOM = "{http://www.w3.org/2005/Atom}"
DC = "{http://purl.org/dc/elements/1.1/}"


def json_ld(text: str) -> dict:
    match = re.search(r'<script type="application/ld\+json">(.*?)</script>', text, re.S)
    assert match, "no JSON-LD on the page"
    return json.loads(match.group(1))


@pytest.mark.parametrize("page", ["home", "article", "section", "search"])
def test_reader_pages_advertise_the_atom_feed_beside_rss(client, page):
    article = ArticleFactory(section=SectionFactory(slug="politics"))
    path = {
        "home": "/",
        "article": article.get_absolute_url(),
        "section": "/section/politics/",
        "search": "/search/?q=headline",
    }[page]

    text = client.get(path).content.decode()

    atom = r'<link rel="alternate" type="application/atom\+xml"[^>]* href="/feed/atom/"'
    assert re.search(atom, text)
    assert re.search(r'<link rel="alternate" type="application/rss\+xml"[^>]* href="/feed/"', text)


def test_atom_feed_names_each_co_author_as_an_author(client):
    ArticleFactory(
        headline="Two bylines",
        authors=[AuthorFactory(name="Paula Stein"), AuthorFactory(name="Omar Haddad")],
    )

    feed = ElementTree.fromstring(client.get("/feed/atom/").content)  # noqa: S314 (our own feed)

    entry = feed.find(f"{ATOM}entry")
    names = [author.findtext(f"{ATOM}name") for author in entry.findall(f"{ATOM}author")]
    assert names == ["Paula Stein", "Omar Haddad"]


@pytest.mark.parametrize("path", ["/feed/", "/section/politics/feed/"])
def test_rss_feeds_name_each_co_author_as_a_creator(client, path):
    ArticleFactory(
        headline="Two bylines",
        section=SectionFactory(slug="politics"),
        authors=[AuthorFactory(name="Paula Stein"), AuthorFactory(name="Omar Haddad")],
    )

    feed = ElementTree.fromstring(client.get(path).content)  # noqa: S314 (our own feed)

    item = feed.find("channel/item")
    assert [creator.text for creator in item.findall(f"{DC}creator")] == [
        "Paula Stein",
        "Omar Haddad",
    ]


def test_shared_image_says_its_width_and_height(client, media_root, editor):
    article = ArticleFactory(image_alt="A chart")
    article.featured_image = image_upload(size=(1300, 731))
    article_save(article=article, user=editor)

    text = client.get(article.get_absolute_url()).content.decode()

    image = re.search(r'<meta property="og:image" content="([^"]+)">', text).group(1)
    assert image.endswith(".w1200.jpg")  # a rendition, not whatever size was uploaded
    assert '<meta property="og:image:width" content="1200">' in text
    assert '<meta property="og:image:height" content="675">' in text
    assert json_ld(text)["image"][0] == image


def test_json_ld_publisher_has_a_logo_that_exists(client, settings):
    from django.contrib.staticfiles import finders

    article = ArticleFactory()

    publisher = json_ld(client.get(article.get_absolute_url()).content.decode())["publisher"]

    logo = publisher["logo"]
    assert logo["@type"] == "ImageObject"
    assert logo["url"].startswith(settings.SITE_URL + "/static/")
    assert finders.find(logo["url"].removeprefix(settings.SITE_URL + "/static/"))
    assert logo["width"] <= 600 and logo["height"] <= 60
