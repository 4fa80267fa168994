"""Editors' admin pages run a fixed number of queries, however many rows there are.

At a million subscribers a query per row, or a count of every row, is what makes a
page slow (docs/scale.md; `make bench-admin` times them at that size). Here each
page is loaded with a few rows and again with more: the number of queries must not
move, and stays under a ceiling.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from outlet.newsletters.models import Delivery, Issue, Subscriber
from tests.factories import DonationFactory, DonorFactory, IssueFactory, SubscriberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor_client(client):
    user = User.objects.create_superuser("editor", "editor@outlet.test", "pw-for-tests-only")
    client.force_login(user)
    return client


@pytest.fixture
def audience(daily, weekly):
    def grow(count: int) -> None:
        for _ in range(count):
            subscriber = SubscriberFactory(newsletters=[daily, weekly])
            donor = DonorFactory(email=subscriber.email)
            DonationFactory(donor=donor, status="paid", paid_at=timezone.now() - timedelta(days=3))
            DonationFactory(donor=donor, status="paid", frequency="month", paid_at=timezone.now())

    return grow


@pytest.fixture
def sent_issue(daily):
    issue = IssueFactory(newsletter=daily, status=Issue.Status.SENT, sent_at=timezone.now())
    issue.started_at = issue.sent_at - timedelta(minutes=5)
    issue.save()
    return issue


def _deliveries_for_all(issue: Issue) -> None:
    Delivery.objects.bulk_create(
        [
            Delivery(issue=issue, subscriber=s, status=Delivery.Status.SENT)
            for s in Subscriber.objects.all()
        ],
        ignore_conflicts=True,
    )


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as context:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(context)


def _urls(daily, issue) -> list[str]:
    subscriber = Subscriber.objects.order_by("pk").first()
    subscribers = reverse("admin:newsletters_subscriber_changelist")
    return [
        subscribers,
        f"{subscribers}?status__exact=active",
        f"{subscribers}?subscriptions__newsletter__id__exact={daily.pk}",
        f"{subscribers}?source__exact=form",
        f"{subscribers}?donor=yes",
        f"{subscribers}?donor=lapsed",
        f"{subscribers}?q=reader",
        reverse("admin:newsletters_subscriber_change", args=[subscriber.pk]),
        reverse("admin:donations_donation_changelist"),
        reverse("admin:donations_donation_changelist") + "?status__exact=paid",
        reverse("admin:newsletters_issue_change", args=[issue.pk]),
        reverse("admin:newsletters_issue_progress", args=[issue.pk]),
        reverse("admin:newsletters_issue_changelist"),
        reverse("admin:newsletters_newsletter_changelist"),
    ]


def test_admin_pages_run_as_many_queries_for_many_rows_as_for_few(
    editor_client, audience, daily, sent_issue
):
    audience(2)
    _deliveries_for_all(sent_issue)
    urls = _urls(daily, sent_issue)
    for url in urls:  # warm the per-process caches (content types, permissions)
        editor_client.get(url)
    few = {url: _queries(editor_client, url) for url in urls}

    audience(12)
    _deliveries_for_all(sent_issue)
    many = {url: _queries(editor_client, url) for url in urls}

    assert many == few


@pytest.mark.parametrize(
    ("page", "ceiling"),
    [
        ("subscribers", 14),
        ("subscriber", 14),
        ("donations", 18),
        ("issue", 14),
        ("progress", 5),
        ("newsletters", 10),
    ],
)
def test_admin_page_query_ceiling(
    editor_client, audience, daily, sent_issue, page, ceiling, django_assert_max_num_queries
):
    audience(5)
    _deliveries_for_all(sent_issue)
    subscriber = Subscriber.objects.order_by("pk").first()
    url = {
        "subscribers": reverse("admin:newsletters_subscriber_changelist") + "?donor=lapsed",
        "subscriber": reverse("admin:newsletters_subscriber_change", args=[subscriber.pk]),
        "donations": reverse("admin:donations_donation_changelist"),
        "issue": reverse("admin:newsletters_issue_change", args=[sent_issue.pk]),
        "progress": reverse("admin:newsletters_issue_progress", args=[sent_issue.pk]),
        "newsletters": reverse("admin:newsletters_newsletter_changelist"),
    }[page]
    editor_client.get(url)
    with django_assert_max_num_queries(ceiling):
        assert editor_client.get(url).status_code == 200


def test_large_lists_show_cached_counts_until_beat_refreshes_them(
    editor_client, daily, monkeypatch
):
    from outlet.core import paginators
    from outlet.newsletters.tasks import subscriber_counts_refresh_task

    monkeypatch.setattr(paginators, "table_row_estimate", lambda model: 5_000_000)
    SubscriberFactory(newsletters=[daily])
    url = reverse("admin:newsletters_newsletter_changelist")

    first = editor_client.get(url)
    assert [(n.slug, n.active_count) for n in first.context["cl"].result_list] == [("daily", 1)]
    SubscriberFactory(newsletters=[daily])
    again = editor_client.get(url)
    assert [n.active_count for n in again.context["cl"].result_list] == [1]  # from the cache

    subscriber_counts_refresh_task.apply()
    refreshed = editor_client.get(url)
    assert [n.active_count for n in refreshed.context["cl"].result_list] == [2]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL planner estimates")
def test_a_filtered_list_of_five_says_five_when_statistics_expect_thousands(editor_client, daily):
    """After 12,000 addresses unsubscribed (an erasure, a bounce wave) and before
    autovacuum, the planner still expects ~12,000 active: the list said so, and
    showed 24 pages, 23 of them empty, for 5 subscribers."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO newsletters_subscriber
              (email, email_hash, name, status, source, token, soft_bounce_count, created_at)
            SELECT 'r' || n || '@example.org', md5(n::text) || md5(n::text), '', 'active',
                   'import', gen_random_uuid(), 0, now()
            FROM generate_series(1, 12005) AS n
            """
        )
        cursor.execute("ANALYZE newsletters_subscriber")
        cursor.execute(
            "UPDATE newsletters_subscriber SET status = 'unsubscribed', unsubscribed_at = now()"
            " WHERE id NOT IN (SELECT id FROM newsletters_subscriber ORDER BY id LIMIT 5)"
        )
    assert Subscriber.objects.filter(status="active").count() == 5
    response = editor_client.get(
        reverse("admin:newsletters_subscriber_changelist"), {"status__exact": "active"}
    )
    assert response.context["cl"].result_count == 5


def test_cached_subscriber_counts_say_how_old_they_are(editor_client, daily, monkeypatch):
    from outlet.core import paginators

    SubscriberFactory(newsletters=[daily])
    newsletters = reverse("admin:newsletters_newsletter_changelist")
    subscribers = reverse("admin:newsletters_subscriber_changelist")
    assert "as of " not in editor_client.get(newsletters).content.decode()  # exact and live

    monkeypatch.setattr(paginators, "table_row_estimate", lambda model: 5_000_000)
    assert "as of " in editor_client.get(newsletters).content.decode()
    assert "as of " in editor_client.get(subscribers).content.decode()
