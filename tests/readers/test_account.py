"""The account page: newsletters, gifts and receipts, the data download."""

from __future__ import annotations

import itertools
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from outlet.donations.models import Donation, DonorEmail, Gift
from outlet.newsletters.models import (
    Click,
    ConsentRecord,
    Delivery,
    IssueLink,
    Newsletter,
    Open,
    Subscriber,
    Suppression,
)
from outlet.newsletters.selectors import subscriber_data_export
from tests.factories import (
    DonationFactory,
    DonorFactory,
    GiftFactory,
    IssueFactory,
    NewsletterFactory,
    SubscriberFactory,
)

from .conftest import signed_in

pytestmark = pytest.mark.django_db


def test_the_account_shows_newsletters_gifts_and_receipts(monthly_reader):
    page = signed_in("reader@example.com").get(reverse("readers:account")).content.decode()
    assert re.search(r"Daily</strong>\s*<span[^>]*>Subscribed", page)
    assert re.search(r"Weekend</strong>\s*<button", page)
    assert "$10.00 monthly" in page
    donation = Donation.objects.get()
    assert reverse("readers:receipt", args=[donation.pk]) in page


def test_a_receipt_is_a_printable_page_of_ones_own_only(monthly_reader):
    donation = Donation.objects.get()
    page = signed_in("reader@example.com").get(reverse("readers:receipt", args=[donation.pk]))
    assert page.status_code == 200
    assert f"Receipt {donation.pk}" in page.content.decode()
    assert "Ada Reader" in page.content.decode()
    other = signed_in("someone@example.com")
    DonorFactory(email="someone@example.com")
    assert other.get(reverse("readers:receipt", args=[donation.pk])).status_code == 404


def test_subscribing_from_the_account_is_the_opt_in(monthly_reader):
    browser = signed_in("reader@example.com")
    weekend = Newsletter.objects.get(slug="weekend")
    response = browser.post(
        reverse("readers:newsletters"), {"newsletter": weekend.pk, "action": "subscribe"}
    )
    assert response.status_code == 302
    subscriber = Subscriber.objects.get(email="reader@example.com")
    assert subscriber.subscriptions.get(newsletter=weekend).confirmed_at is not None
    kinds = set(
        ConsentRecord.objects.filter(subscriber=subscriber, form="account").values_list(
            "kind", flat=True
        )
    )
    assert kinds == {"signup", "confirm"}
    assert not mail.outbox  # no confirmation email: the signed-in click confirmed it


def test_a_new_address_subscribes_from_its_account(db):
    DonorFactory(email="giver@example.test")
    daily = NewsletterFactory(name="Daily", slug="daily")
    browser = signed_in("giver@example.test")
    browser.post(reverse("readers:newsletters"), {"newsletter": daily.pk, "action": "subscribe"})
    subscriber = Subscriber.objects.get(email="giver@example.test")
    assert subscriber.status == Subscriber.Status.ACTIVE
    assert subscriber.subscriptions.get().confirmed_at is not None


def test_a_suppressed_address_is_not_subscribed(monthly_reader):
    from outlet.newsletters.services import email_suppress

    email_suppress(email="reader@example.com", reason=Suppression.Reason.COMPLAINT)
    weekend = Newsletter.objects.get(slug="weekend")
    browser = signed_in("reader@example.com")
    response = browser.post(
        reverse("readers:newsletters"), {"newsletter": weekend.pk, "action": "subscribe"}
    )
    assert response["Location"].endswith("?done=suppressed")
    assert not Subscriber.objects.get().subscriptions.filter(newsletter=weekend).exists()


def test_a_newsletter_not_offered_cannot_be_chosen(monthly_reader):
    hidden = NewsletterFactory(name="Staff", slug="staff", is_active=False)
    browser = signed_in("reader@example.com")
    response = browser.post(
        reverse("readers:newsletters"), {"newsletter": hidden.pk, "action": "subscribe"}
    )
    assert response.status_code == 400
    assert not Subscriber.objects.get().subscriptions.filter(newsletter=hidden).exists()


def test_unsubscribe_one_and_then_everything(monthly_reader):
    browser = signed_in("reader@example.com")
    daily = Newsletter.objects.get(slug="daily")
    browser.post(reverse("readers:newsletters"), {"newsletter": daily.pk, "action": "unsubscribe"})
    assert Subscriber.objects.get().status == Subscriber.Status.UNSUBSCRIBED
    weekend = Newsletter.objects.get(slug="weekend")
    browser.post(reverse("readers:newsletters"), {"newsletter": weekend.pk, "action": "subscribe"})
    browser.post(reverse("readers:newsletters"), {"action": "unsubscribe-all"})
    subscriber = Subscriber.objects.get()
    assert subscriber.status == Subscriber.Status.UNSUBSCRIBED
    assert not subscriber.subscriptions.exists()


def test_change_the_amount_and_cancel_a_gift(monthly_reader, stripe_agrees):
    browser = signed_in("reader@example.com")
    response = browser.post(
        reverse("readers:gift-amount", args=[monthly_reader.pk]), {"amount": "25"}
    )
    assert response["Location"].endswith("?done=amount")
    assert Gift.objects.get().amount == 2500
    browser.post(reverse("readers:gift-cancel", args=[monthly_reader.pk]))
    assert Gift.objects.get().status == Gift.Status.CANCELLED
    kinds = set(DonorEmail.objects.values_list("kind", flat=True))
    assert {"amount_changed", "gift_cancelled"} <= kinds  # each confirmed by email


def test_someone_elses_gift_is_out_of_reach(monthly_reader, stripe_agrees):
    DonorFactory(email="someone@example.com")
    other = signed_in("someone@example.com")
    url = reverse("readers:gift-cancel", args=[monthly_reader.pk])
    assert other.post(url).status_code == 404
    assert Client().post(url).status_code == 403
    assert Gift.objects.get().status == Gift.Status.ACTIVE


def test_an_amount_outside_the_limits_is_refused(monthly_reader, stripe_agrees):
    browser = signed_in("reader@example.com")
    response = browser.post(
        reverse("readers:gift-amount", args=[monthly_reader.pk]), {"amount": "0.10"}
    )
    assert response.status_code == 400
    assert "between" in response.content.decode()
    assert Gift.objects.get().amount == 1000


def test_the_data_download_holds_both_records(monthly_reader):
    response = signed_in("reader@example.com").get(reverse("readers:data-export"))
    assert response["Content-Disposition"].startswith("attachment")
    assert "no-store" in response["Cache-Control"]
    document = json.loads(response.content)
    assert document["email"] == "reader@example.com"
    assert document["newsletters"]["subscriptions"][0]["newsletter"] == "Daily"
    assert document["newsletters"]["consent_records"] is not None
    assert document["donations"]["gifts"][0]["amount"] == 1000
    assert document["donations"]["donations"][0]["public_name"] == "Ada R."
    assert "emails_sent" in document["donations"]


def test_the_data_download_holds_the_readers_own_opens_and_clicks(
    monthly_reader, django_assert_num_queries
):
    daily = Newsletter.objects.get(slug="daily")
    reader = Subscriber.objects.get(email="reader@example.com")
    other = SubscriberFactory(email="other@example.com", newsletters=[daily])
    nonces = itertools.count(1)
    day = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)
    for n in range(3):
        sent_at = day + timedelta(days=n)
        issue = IssueFactory(
            newsletter=daily, subject=f"Edition {n}", status="sent", sent_at=sent_at
        )
        story = IssueLink.objects.create(issue=issue, position=0, url=f"https://example.org/s{n}")
        elsewhere = IssueLink.objects.create(issue=issue, position=1, url="https://example.org/x")
        for subscriber, link in ((reader, story), (other, elsewhere)):
            delivery = Delivery.objects.create(
                issue=issue, subscriber=subscriber, status="sent", sent_at=sent_at
            )
            Open.objects.create(
                issue=issue, delivery=delivery, nonce=next(nonces),
                opened_at=sent_at + timedelta(minutes=5), machine=subscriber == other,
            )  # fmt: skip
            Click.objects.create(
                issue=issue, link=link, delivery=delivery, nonce=next(nonces),
                clicked_at=sent_at + timedelta(minutes=6),
            )  # fmt: skip
    only_theirs = IssueFactory(newsletter=daily, subject="Sent to the other only", status="sent")
    Delivery.objects.create(issue=only_theirs, subscriber=other, status="sent", sent_at=day)

    response = signed_in("reader@example.com").get(reverse("readers:data-export"))

    deliveries = json.loads(response.content)["newsletters"]["deliveries"]
    assert deliveries == [
        {
            "newsletter": "Daily",
            "subject": f"Edition {n}",
            "issue_sent_at": (day + timedelta(days=n)).isoformat(),
            "status": "sent",
            "sent_at": (day + timedelta(days=n)).isoformat(),
            "opens": [{"at": (day + timedelta(days=n, minutes=5)).isoformat(), "machine": False}],
            "clicks": [
                {
                    "at": (day + timedelta(days=n, minutes=6)).isoformat(),
                    "url": f"https://example.org/s{n}",
                }
            ],
        }
        for n in range(3)
    ]
    # Three queries for every delivery's records, however many deliveries there are.
    with django_assert_num_queries(3 + 3):
        subscriber_data_export(subscriber=reader)


def test_a_newsletter_waiting_for_its_link_is_confirmed_by_the_signed_in_click(monthly_reader):
    from outlet.newsletters.models import Subscription

    weekend = Newsletter.objects.get(slug="weekend")
    subscriber = Subscriber.objects.get()
    Subscription.objects.create(subscriber=subscriber, newsletter=weekend)  # not confirmed
    browser = signed_in("reader@example.com")
    page = browser.get(reverse("readers:account")).content.decode()
    assert re.search(r"Weekend</strong>\s*<span[^>]*>Waiting for confirmation", page)
    browser.post(reverse("readers:newsletters"), {"newsletter": weekend.pk, "action": "subscribe"})
    assert subscriber.subscriptions.get(newsletter=weekend).confirmed_at is not None


def test_donors_only_newsletters_are_offered_to_donors_alone(monthly_reader):
    NewsletterFactory(name="Insiders", slug="insiders", visibility="donors")
    SubscriberFactory(email="reader-only@example.com")
    assert "Insiders" in signed_in("reader@example.com").get("/account/").content.decode()
    assert "Insiders" not in signed_in("reader-only@example.com").get("/account/").content.decode()


def test_donors_only_newsletters_need_a_paid_gift():
    """An address typed into the donate form, its card step abandoned, leaves a donor row
    with a pending donation: that is not giving."""
    insiders = NewsletterFactory(name="Insiders", slug="insiders", visibility="donors")
    DonationFactory(donor=DonorFactory(email="abandoned@example.com"), status="pending")
    browser = signed_in("abandoned@example.com")
    assert "Insiders" not in browser.get("/account/").content.decode()
    response = browser.post(
        reverse("readers:newsletters"), {"newsletter": insiders.pk, "action": "subscribe"}
    )
    assert response.status_code == 400
    assert not insiders.subscriptions.exists()


def test_a_live_gift_without_a_payment_yet_counts_as_giving():
    NewsletterFactory(name="Insiders", slug="insiders", visibility="donors")
    GiftFactory(donor=DonorFactory(email="new-monthly@example.com"), status="active")
    assert "Insiders" in signed_in("new-monthly@example.com").get("/account/").content.decode()


def test_a_receipt_page_says_what_the_account_credit_paid(monthly_reader):
    """As the emailed receipt does: a renewal paid in part from Stripe's credit balance
    says the card's amount and the credit's, not the card's alone as if it were all."""
    donation = Donation.objects.get()
    Donation.objects.filter(pk=donation.pk).update(amount=500, credit_amount=500)

    page = signed_in("reader@example.com").get(reverse("readers:receipt", args=[donation.pk]))

    text = page.content.decode()
    assert "$5.00" in text
    assert "account credit" in text
