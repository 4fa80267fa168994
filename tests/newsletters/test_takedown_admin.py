"""The newsletter admin and takedowns: cleaned text only, pages changed on commit."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.utils import timezone

from outlet.articles.caching import VERSION_KEY
from outlet.newsletters.models import Issue, Newsletter
from tests.factories import ArticleFactory, IssueFactory, NewsletterFactory

pytestmark = pytest.mark.django_db


def test_admin_shows_a_sent_issues_text_only_as_cleaned_html(admin_client):
    issue = IssueFactory(status=Issue.Status.SENT, sent_at=timezone.now())
    # Written by something other than the admin form (a shell, a migration, an import).
    Issue.objects.filter(pk=issue.pk).update(
        intro='<p onclick="steal()">Good morning.</p><script>steal()</script>',
        body='<p>Read on.</p><img src="x" onerror="steal()">',
    )

    html = admin_client.get(f"/admin/newsletters/issue/{issue.pk}/change/").content.decode()

    assert "Good morning." in html and "Read on." in html
    assert "steal()" not in html


def test_newsletter_saved_in_the_admin_changes_pages_only_on_commit(
    admin_client, client, django_capture_on_commit_callbacks
):
    newsletter = NewsletterFactory(name="Morning Brief")
    article = ArticleFactory()
    client.get(article.get_absolute_url())
    before = cache.get(VERSION_KEY)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post(
            f"/admin/newsletters/newsletter/{newsletter.pk}/change/",
            {
                "name": "Evening Brief",
                "slug": newsletter.slug,
                "description": newsletter.description,
                "from_name": newsletter.from_name,
                "from_email": newsletter.from_email,
                "visibility": Newsletter.Visibility.PUBLIC,
                "is_active": "on",
                "position": 0,
            },
        )
        assert response.status_code == 302, response.content.decode()[:2000]
        assert cache.get(VERSION_KEY) == before  # not inside the transaction
    assert callbacks, "the save queued nothing for the commit"
    for callback in callbacks:
        callback()

    assert cache.get(VERSION_KEY) != before
    assert "Evening Brief" in client.get(article.get_absolute_url()).content.decode()
