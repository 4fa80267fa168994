"""Takedowns: an article deleted or unpublished leaves every reader surface at once.

Each surface is first read (so the page cache holds it), then the article is taken
down the way an editor or the code would, and the surface is read again. The
cache stays on throughout: a stale cached page is exactly the failure looked for.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from outlet.articles.models import Article
from outlet.articles.services import article_delete, article_unpublish, articles_delete
from tests.factories import ArticleFactory, AuthorFactory, IssueFactory, SectionFactory, TagFactory

pytestmark = pytest.mark.django_db

HEADLINE = "Zanzibar quarry report"


@pytest.fixture
def story() -> Article:
    section = SectionFactory(slug="politics", name="Politics")
    author = AuthorFactory(slug="ada", name="Ada Reporter")
    article = ArticleFactory(
        headline=HEADLINE, slug="zanzibar-quarry", section=section, authors=[author]
    )
    article.tags.set([TagFactory(slug="quarries", name="Quarries")])
    ArticleFactory(headline="A story that stays", section=section, authors=[author])
    return article


def surfaces(article: Article) -> dict[str, str]:
    month = article.publish_at.astimezone()
    return {
        "home": "/",
        "section": "/section/politics/",
        "tag": "/tag/quarries/",
        "author": "/author/ada/",
        "search": "/search/?q=Zanzibar",
        "feed": "/feed/",
        "atom feed": "/feed/atom/",
        "section feed": "/section/politics/feed/",
        "author feed": "/author/ada/feed/",
        "sitemap": "/sitemap.xml",
        "news sitemap": "/sitemap-news.xml",
        "archive month": f"/archive/{month.year}/{month.month}/",
    }


def _shows(reader: Client, url: str, needle: str) -> bool:
    response = reader.get(url)
    assert response.status_code == 200, url
    return needle in response.content.decode()


def _unpublish_in_admin(admin: Client, article: Article) -> None:
    response = admin.post(
        "/admin/articles/article/",
        {"action": "unpublish_now", "_selected_action": [article.pk]},
    )
    assert response.status_code == 302


def _delete_in_admin(admin: Client, article: Article) -> None:
    response = admin.post(f"/admin/articles/article/{article.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302


def _bulk_delete_in_admin(admin: Client, article: Article) -> None:
    response = admin.post(
        "/admin/articles/article/",
        {"action": "delete_selected", "_selected_action": [article.pk], "post": "yes"},
    )
    assert response.status_code == 302


TAKEDOWNS: dict[str, Callable[[Client, Article], None]] = {
    "service unpublish": lambda admin, article: article_unpublish(article=article),
    "service delete": lambda admin, article: article_delete(article=article),
    "service bulk delete": lambda admin, article: articles_delete(
        articles=Article.objects.filter(pk=article.pk)
    ),
    "admin bulk unpublish": _unpublish_in_admin,
    "admin delete": _delete_in_admin,
    "admin bulk delete": _bulk_delete_in_admin,
}


@pytest.mark.parametrize("takedown", TAKEDOWNS)
def test_taken_down_article_leaves_every_cached_surface(
    takedown, story, client, editor, django_capture_on_commit_callbacks
):
    url = story.get_absolute_url()
    pages = surfaces(story)
    assert client.get(url).status_code == 200
    for name, page in pages.items():
        assert _shows(client, page, story.slug), f"{name} should list the story first"
    admin = Client()
    admin.force_login(editor)

    with django_capture_on_commit_callbacks(execute=True):
        TAKEDOWNS[takedown](admin, story)

    assert client.get(url).status_code in (404, 410)
    gone = [name for name, page in pages.items() if _shows(client, page, story.slug)]
    assert gone == [], f"still shown on {gone} after {takedown}"
    assert _shows(client, "/section/politics/", "A story that stays")


def test_pages_change_only_once_the_takedown_commits(
    story, client, django_capture_on_commit_callbacks
):
    """A reader between the write and the commit must not re-cache the old page under a
    new version: the version moves on commit, not inside the transaction."""
    from django.core.cache import cache

    from outlet.articles.caching import VERSION_KEY

    client.get(story.get_absolute_url())
    before = cache.get(VERSION_KEY)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        article_unpublish(article=story)
        assert cache.get(VERSION_KEY) == before
    for callback in callbacks:
        callback()
    assert cache.get(VERSION_KEY) != before


def test_newsletter_web_archive_shows_only_articles_still_public(
    story, client, django_capture_on_commit_callbacks
):
    from django.utils import timezone

    kept = ArticleFactory(headline="Still public")
    issue = IssueFactory(articles=[story, kept], status="sent", sent_at=timezone.now())
    page = f"/newsletter/{issue.newsletter.slug}/archive/{issue.pk}/"
    assert _shows(client, page, HEADLINE)

    with django_capture_on_commit_callbacks(execute=True):
        article_unpublish(article=story)

    assert not _shows(client, page, HEADLINE)
    assert _shows(client, page, "Still public")


def test_article_in_a_sent_issue_can_still_be_deleted(story, client, editor):
    from django.utils import timezone

    issue = IssueFactory(articles=[story], status="sent", sent_at=timezone.now())
    admin = Client()
    admin.force_login(editor)

    _delete_in_admin(admin, story)

    assert not Article.objects.filter(pk=story.pk).exists()
    page = f"/newsletter/{issue.newsletter.slug}/archive/{issue.pk}/"
    assert not _shows(client, page, HEADLINE)


def test_admin_bulk_publish_puts_a_draft_back_on_cached_pages(
    story, client, editor, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        article_unpublish(article=story)
    assert client.get(story.get_absolute_url()).status_code == 404
    admin = Client()
    admin.force_login(editor)

    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(
            "/admin/articles/article/",
            {"action": "publish_now", "_selected_action": [story.pk]},
            follow=True,
        )

    assert "Published 1 article(s)." in response.content.decode()
    assert client.get(story.get_absolute_url()).status_code == 200
    assert _shows(client, "/", story.slug)


def test_a_legacy_article_missing_alt_text_can_still_be_taken_down(client, editor):
    legacy = ArticleFactory(body='<p>Old story</p><img src="/media/old.jpg">')
    Article.objects.filter(pk=legacy.pk).update(body=legacy.body)  # as imported, unchecked
    legacy.refresh_from_db()

    article_unpublish(article=legacy, user=editor)

    legacy.refresh_from_db()
    assert legacy.status == Article.Status.UNPUBLISHED
    assert client.get(legacy.get_absolute_url()).status_code == 404
