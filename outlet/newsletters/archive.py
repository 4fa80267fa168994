"""The public web archive of sent issues: a page per newsletter, a page per issue, RSS.

Only sent issues are public, and an issue page lists only the articles that are
still public: an article taken down after the issue went out leaves the archive.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext

from outlet.articles.models import Article
from outlet.core.site_url import SiteUrlFeed
from outlet.newsletters.issues import issues_archived
from outlet.newsletters.models import Issue, Newsletter
from outlet.newsletters.sending import html_to_text, rich_text_for_email

FEED_SIZE = 20


def _newsletter(slug: str) -> Newsletter:
    return get_object_or_404(Newsletter, slug=slug, visibility=Newsletter.Visibility.PUBLIC)


def issue_archive(request: HttpRequest, slug: str) -> HttpResponse:
    newsletter = _newsletter(slug)
    return render(
        request,
        "newsletters/archive.html",
        {"newsletter": newsletter, "issues": issues_archived(newsletter=newsletter)[:100]},
    )


def issue_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    newsletter = _newsletter(slug)
    issue = get_object_or_404(
        Issue.objects.select_related("appeal"),
        pk=pk,
        newsletter=newsletter,
        status=Issue.Status.SENT,
    )
    articles = [
        item.article
        for item in issue.issue_articles.filter(article__in=Article.objects.published())
        .select_related("article__section")
        .prefetch_related("article__bylines__author")
    ]
    return render(
        request,
        "newsletters/archive_issue.html",
        {
            "newsletter": newsletter,
            "issue": issue,
            "articles": articles,
            "intro_html": rich_text_for_email(issue.intro),
            "body_html": rich_text_for_email(issue.body),
        },
    )


class IssueArchiveFeed(SiteUrlFeed):
    """RSS of a newsletter's sent issues."""

    def get_object(self, request: HttpRequest, slug: str) -> Newsletter:  # type: ignore[override]
        return _newsletter(slug)

    def title(self, obj: Newsletter) -> str:
        return f"{obj.name} · {settings.OUTLET_NAME}"

    def link(self, obj: Newsletter) -> str:
        from django.urls import reverse

        return reverse("newsletters:archive", args=[obj.slug])

    def description(self, obj: Newsletter) -> str:
        return obj.description or gettext("Past issues of %(newsletter)s.") % {
            "newsletter": obj.name
        }

    def items(self, obj: Newsletter):
        return issues_archived(newsletter=obj)[:FEED_SIZE]

    def item_title(self, item: Issue) -> str:
        return item.subject

    def item_description(self, item: Issue) -> str:
        return item.preheader or html_to_text(item.intro)[:300]

    def item_pubdate(self, item: Issue):
        return item.sent_at
