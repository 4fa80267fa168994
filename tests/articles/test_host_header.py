"""A request's Host or X-Forwarded-Host never reaches a link: absolute addresses come
from SITE_URL, so a poisoned request cannot leave a page in the cache that sends every
reader after it elsewhere (the Varnish half: tests/articles/varnish/*host*.vtc)."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.urls import reverse

from outlet.newsletters.models import ConsentRecord
from tests.core.test_settings import PRODUCTION_ENV, _manage
from tests.factories import ArticleFactory, NewsletterFactory, TagFactory

pytestmark = pytest.mark.django_db

EVIL = "127.0.0.1:6666"  # a host ALLOWED_HOSTS lets through: only its port differs
POISONS = {
    "Host": {"HTTP_HOST": EVIL},
    "X-Forwarded-Host": {"HTTP_X_FORWARDED_HOST": EVIL},
}
ABSOLUTE = re.compile(rb"""https?://[^\s"'<>]+""")


@pytest.fixture
def pages(db) -> list[str]:
    article = ArticleFactory()
    article.tags.add(tag := TagFactory())
    section, author = article.section, article.bylines.first().author
    newsletter = NewsletterFactory()
    return [
        reverse("newsletters:archive", args=[newsletter.slug]),
        reverse("newsletters:archive-feed", args=[newsletter.slug]),
        "/",
        article.get_absolute_url(),
        section.get_absolute_url(),
        author.get_absolute_url(),
        tag.get_absolute_url(),
        reverse("articles:feed"),
        reverse("articles:feed-atom"),
        reverse("articles:section-feed", args=[section.slug]),
        reverse("articles:author-feed", args=[author.slug]),
        "/sitemap.xml",
        "/sitemap-news.xml",
        "/robots.txt",
    ]


def _foreign_links(content: bytes) -> list[bytes]:
    own = settings.SITE_URL.encode()
    return [
        link
        for link in ABSOLUTE.findall(content)
        if EVIL.encode() in link or (b"127.0.0.1" in link and not link.startswith(own))
    ]


@pytest.mark.parametrize("poison", POISONS, ids=list(POISONS))
def test_a_poisoned_request_gets_and_leaves_only_site_url_links(client, settings, pages, poison):
    settings.USE_X_FORWARDED_HOST = True  # even if a deployment trusted the proxy's header
    for url in pages:
        poisoned = client.get(url, **POISONS[poison])
        assert poisoned.status_code == 200, url
        assert _foreign_links(poisoned.content) == [], url

        after = client.get(url)  # the next reader, perhaps from the page cache
        assert after.status_code == 200, url
        assert _foreign_links(after.content) == [], url
        assert EVIL.encode() not in after.content, url


def test_feeds_link_to_site_url(client, pages):
    feed = client.get(reverse("articles:feed"), HTTP_HOST=EVIL).content
    links = ABSOLUTE.findall(feed)
    assert links
    assert all(
        link.startswith(settings.SITE_URL.encode()) or b"w3.org" in link or b"purl.org" in link
        for link in links
    ), links


def test_a_newsletter_consent_records_the_page_on_site_url(client, settings):
    settings.USE_X_FORWARDED_HOST = True
    newsletter = NewsletterFactory()

    client.post(
        reverse("newsletters:index"),
        {"email": "reader@example.com", "newsletters": [newsletter.pk], "page_url": "/some/"},
        HTTP_X_FORWARDED_HOST=EVIL,
        HTTP_HOST=EVIL,
    )

    record = ConsentRecord.objects.get()
    assert record.page_url == f"{settings.SITE_URL}/some/"


def test_production_behind_the_proxy_does_not_trust_x_forwarded_host():
    result = _manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.USE_X_FORWARDED_HOST)",
        **{**PRODUCTION_ENV, "OUTLET_BEHIND_PROXY": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"
