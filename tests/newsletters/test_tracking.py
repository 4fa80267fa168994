"""Bounces, complaints and mailto unsubscribes arriving through anymail's verified webhooks.

The payloads are Postmark's documented samples (tests/newsletters/payloads);
they go through anymail's real webhook view, including its basic-auth check.
"""

import base64
import json
from pathlib import Path

import pytest

from outlet.core.addresses import email_digest
from outlet.newsletters.models import Subscriber, Suppression
from outlet.newsletters.selectors import newsletter_recipients
from outlet.newsletters.tokens import unsubscribe_token
from tests.factories import SubscriberFactory

pytestmark = pytest.mark.django_db

PAYLOADS = Path(__file__).parent / "payloads"
AUTH = "Basic " + base64.b64encode(b"anymail:s3cret-webhook").decode()


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    # Only the configured provider's webhooks are mounted (newsletters/esp_webhooks.py).
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {"WEBHOOK_SECRET": "anymail:s3cret-webhook"}


@pytest.fixture
def reader(daily, weekly):
    return SubscriberFactory(email="reader@example.com", newsletters=[daily, weekly])


def post_event(client, name, *, kind="tracking", auth=AUTH, **replace):
    payload = json.loads((PAYLOADS / f"{name}.json").read_text())
    payload.update(replace)
    return client.post(
        f"/anymail/postmark/{kind}/",
        json.dumps(payload),
        content_type="application/json",
        HTTP_AUTHORIZATION=auth,
    )


def test_hard_bounce_suppresses_for_all_newsletters(client, reader, daily, weekly):
    response = post_event(client, "postmark_hard_bounce")
    assert response.status_code == 200
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.BOUNCED
    assert Suppression.objects.get().reason == Suppression.Reason.HARD_BOUNCE
    assert not newsletter_recipients(daily).exists()
    assert not newsletter_recipients(weekly).exists()


def test_repeated_bounce_webhook_suppresses_once(client, reader):
    post_event(client, "postmark_hard_bounce")
    post_event(client, "postmark_hard_bounce")
    assert Suppression.objects.count() == 1


def test_complaint_suppresses(client, reader, daily):
    assert post_event(client, "postmark_spam_complaint").status_code == 200
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.COMPLAINED
    assert Suppression.objects.get().reason == Suppression.Reason.COMPLAINT
    assert not newsletter_recipients(daily).exists()


def test_soft_bounces_suppress_only_after_the_limit_in_a_row(client, reader, settings, daily):
    settings.NEWSLETTER_SOFT_BOUNCE_LIMIT = 3
    post_event(client, "postmark_soft_bounce")
    post_event(client, "postmark_soft_bounce")
    post_event(client, "postmark_delivery")  # the run is broken
    post_event(client, "postmark_soft_bounce")
    post_event(client, "postmark_soft_bounce")
    reader.refresh_from_db()
    assert reader.soft_bounce_count == 2
    assert reader.status == Subscriber.Status.ACTIVE
    assert list(newsletter_recipients(daily)) == [reader]

    post_event(client, "postmark_soft_bounce")
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.BOUNCED
    assert Suppression.objects.get().reason == Suppression.Reason.SOFT_BOUNCES


def test_webhook_without_the_secret_is_refused_and_changes_nothing(client, reader):
    bad = "Basic " + base64.b64encode(b"anymail:wrong").decode()
    response = post_event(client, "postmark_hard_bounce", auth=bad)
    assert response.status_code in (400, 401, 403)
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.ACTIVE
    assert not Suppression.objects.exists()


def test_bounce_for_an_unknown_address_still_suppresses_it(client, db):
    post_event(client, "postmark_hard_bounce", Email="stranger@example.com")
    assert Suppression.objects.filter(email_hash=email_digest("stranger@example.com")).exists()


def test_mailto_unsubscribe_through_inbound_webhook(client, reader, daily, weekly):
    subject = f"unsubscribe {unsubscribe_token(reader, daily)}"
    response = post_event(client, "postmark_inbound_unsubscribe", kind="inbound", Subject=subject)
    assert response.status_code == 200
    assert [s.newsletter for s in reader.subscriptions.all()] == [weekly]


def test_mailto_unsubscribe_with_a_forged_token_is_ignored(client, reader):
    subject = f"unsubscribe {unsubscribe_token(reader)[:-2]}xx"
    post_event(client, "postmark_inbound_unsubscribe", kind="inbound", Subject=subject)
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.ACTIVE
