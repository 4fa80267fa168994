"""Bounces, complaints and unsubscribes counted for the issue whose delivery they followed."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from outlet.newsletters.models import Delivery, DeliveryEvent
from outlet.newsletters.services import subscriber_unsubscribe
from outlet.newsletters.tokens import unsubscribe_token
from tests.factories import IssueFactory, SubscriberFactory

pytestmark = pytest.mark.django_db

PAYLOADS = Path(__file__).parent / "payloads"
AUTH = "Basic " + base64.b64encode(b"anymail:s3cret-webhook").decode()


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    # Only the configured provider's webhooks are mounted (newsletters/esp_webhooks.py).
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {"WEBHOOK_SECRET": "anymail:s3cret-webhook"}


def post_event(client, name, **replace):
    payload = json.loads((PAYLOADS / f"{name}.json").read_text())
    payload.update(replace)
    return client.post(
        "/anymail/postmark/tracking/",
        json.dumps(payload),
        content_type="application/json",
        HTTP_AUTHORIZATION=AUTH,
    )


@pytest.fixture
def reader(daily, weekly):
    return SubscriberFactory(email="reader@example.com", newsletters=[daily, weekly])


def delivered(issue, subscriber, *, ago: timedelta) -> Delivery:
    return Delivery.objects.create(
        issue=issue,
        subscriber=subscriber,
        status=Delivery.Status.SENT,
        sent_at=timezone.now() - ago,
    )


def figures(issue) -> tuple[int, int, int]:
    """(bounced, complaints, unsubscribed) attributed to the issue."""
    events = DeliveryEvent.objects.filter(issue=issue)
    return tuple(events.filter(kind=kind).count() for kind in DeliveryEvent.Kind.values)


def test_a_bounce_counts_for_the_latest_issue_the_address_was_sent(client, reader, daily):
    older = IssueFactory(newsletter=daily, status="sent")
    latest = IssueFactory(newsletter=daily, status="sent")
    delivered(older, reader, ago=timedelta(days=2))
    delivered(latest, reader, ago=timedelta(hours=1))

    post_event(client, "postmark_hard_bounce")
    post_event(client, "postmark_hard_bounce")

    assert figures(latest) == (1, 0, 0)
    assert figures(older) == (0, 0, 0)


def test_a_bounce_names_its_delivery_in_the_metadata_of_the_batch_path(client, reader, daily):
    named = IssueFactory(newsletter=daily, status="sent")
    latest = IssueFactory(newsletter=daily, status="sent")
    delivery = delivered(named, reader, ago=timedelta(days=2))
    delivered(latest, reader, ago=timedelta(hours=1))

    post_event(client, "postmark_hard_bounce", Metadata={"delivery_id": str(delivery.pk)})

    assert figures(named) == (1, 0, 0)
    assert figures(latest) == (0, 0, 0)


def test_a_complaint_counts_for_the_issue(client, reader, daily):
    issue = IssueFactory(newsletter=daily, status="sent")
    delivered(issue, reader, ago=timedelta(hours=3))

    post_event(client, "postmark_spam_complaint")

    assert figures(issue) == (0, 1, 0)


def test_one_click_unsubscribe_counts_for_the_newsletters_latest_issue(
    client, reader, daily, weekly
):
    daily_issue = IssueFactory(newsletter=daily, status="sent")
    weekly_issue = IssueFactory(newsletter=weekly, status="sent")
    delivered(daily_issue, reader, ago=timedelta(days=1))
    delivered(weekly_issue, reader, ago=timedelta(hours=1))

    token = unsubscribe_token(reader, daily)
    response = client.post(f"/newsletter/unsubscribe/{token}/", {"List-Unsubscribe": "One-Click"})
    client.post(f"/newsletter/unsubscribe/{token}/", {"List-Unsubscribe": "One-Click"})

    assert response.status_code == 200
    assert figures(daily_issue) == (0, 0, 1)
    assert figures(weekly_issue) == (0, 0, 0)


def test_an_unsubscribe_long_after_the_last_issue_counts_for_none(reader, daily):
    issue = IssueFactory(newsletter=daily, status="sent")
    delivered(issue, reader, ago=timedelta(days=90))

    subscriber_unsubscribe(subscriber=reader)

    assert not DeliveryEvent.objects.exists()


def test_without_redis_the_issue_figures_follow_at_once(client, reader, daily, settings):
    from outlet.newsletters.models import IssueStats

    if settings.CACHES["default"]["BACKEND"].endswith("RedisCache"):
        pytest.skip("with Redis the flush refreshes the figures (test_measuring_worker)")
    issue = IssueFactory(newsletter=daily, status="sent")
    delivered(issue, reader, ago=timedelta(hours=3))

    post_event(client, "postmark_spam_complaint")

    assert IssueStats.objects.get(issue=issue).complaints == 1


def test_leaving_one_newsletter_on_the_preferences_page_counts_as_an_unsubscribe(
    reader, daily, weekly
):
    from outlet.newsletters.services import subscriber_preferences_update

    daily_issue, weekly_issue = IssueFactory(newsletter=daily), IssueFactory(newsletter=weekly)
    daily_delivery = delivered(daily_issue, reader, ago=timedelta(days=1))
    delivered(weekly_issue, reader, ago=timedelta(hours=1))

    subscriber_preferences_update(subscriber=reader, newsletters=[weekly])  # unticks the Daily

    assert not reader.subscriptions.filter(newsletter=daily).exists()
    assert figures(daily_issue) == (0, 0, 1)
    assert figures(weekly_issue) == (0, 0, 0)
    assert DeliveryEvent.objects.get(kind=DeliveryEvent.Kind.UNSUBSCRIBE).delivery == daily_delivery


def test_an_issues_figures_stay_when_its_readers_are_erased(daily):
    from outlet.newsletters.measuring.recording import (
        delivery_event_record,
        issue_stats_refresh,
        tracking_lines_write,
    )
    from outlet.newsletters.models import IssueLink
    from outlet.newsletters.services import subscriber_erase

    issue = IssueFactory(newsletter=daily, started_at=timezone.now() - timedelta(hours=3))
    IssueLink.objects.create(issue=issue, position=0, url="https://example.org/story")
    readers = SubscriberFactory.create_batch(3, newsletters=[daily])
    deliveries = [delivered(issue, r, ago=timedelta(hours=2)) for r in readers]
    delivery_event_record(delivery=deliveries[0], kind=DeliveryEvent.Kind.UNSUBSCRIBE)
    now = timezone.now().timestamp()
    tracking_lines_write(
        lines=[
            f"c {issue.pk} {deliveries[0].pk} 0 {now} 1",
            f"c {issue.pk} {deliveries[0].pk} 0 {now} 2",
            f"o {issue.pk} {deliveries[0].pk} 0 {now} 3",
            f"m {issue.pk} {deliveries[1].pk} 0 {now} 4",
        ]
    )
    before = issue_stats_refresh(issue_id=issue.pk)
    wanted = (3, 1, 2, 1, 2, 1)
    got = (before.sent, before.unsubscribed, before.opened, before.opened_machine)
    assert got + (before.clicks, before.clicked) == wanted

    subscriber_erase(subscriber=readers[0])
    subscriber_erase(subscriber=readers[1])
    after = issue_stats_refresh(issue_id=issue.pk)  # any later click's flush does this

    got = (after.sent, after.unsubscribed, after.opened, after.opened_machine)
    assert got + (after.clicks, after.clicked) == wanted
    assert after.breakdown == before.breakdown  # the report's links and chart too
    assert sum(after.breakdown["clicks_by_hour"]) == 2
    assert list(after.breakdown["links"].values()) == [[2, 1]]
