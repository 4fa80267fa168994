"""Deleting the account: what goes, what stays for receipts, and what Stripe is told."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse

from outlet.donations import stripe_gateway
from outlet.donations.models import Donation, Donor, Gift
from outlet.newsletters.models import Subscriber, Suppression
from outlet.readers.models import Reader
from tests.factories import DonorFactory, GiftFactory

from .conftest import signed_in

pytestmark = pytest.mark.django_db


def test_deleting_leaves_nothing_that_identifies_the_reader(monthly_reader, stripe_agrees):
    browser = signed_in("reader@example.com")
    assert browser.post(reverse("readers:data-delete")).status_code == 400  # not confirmed
    response = browser.post(reverse("readers:data-delete"), {"confirm": "on"})
    assert "Your data is deleted" in response.content.decode()
    assert not Subscriber.objects.exists()
    assert Suppression.objects.filter(reason="erased").count() == 1
    donor = Donor.objects.get()
    assert donor.email is None and donor.name == ""
    donation = Donation.objects.get()
    assert (donation.amount, donation.status) == (1000, "paid")  # kept for the receipt
    assert donation.public_name == "" and not donation.public_credit
    assert Gift.objects.get().status == Gift.Status.CANCELLED
    assert ("cancel", {"subscription_id": monthly_reader.stripe_subscription_id}) in [
        (name, {"subscription_id": kw["subscription_id"]}) for name, kw in stripe_agrees
    ]
    assert not Reader.objects.exists()
    page = browser.get(reverse("readers:account")).content.decode()
    assert "Email me a sign-in link" in page


def test_deletion_stops_if_stripe_cannot_cancel_the_gift(monthly_reader, monkeypatch):
    def refuse(**kwargs):
        raise stripe_gateway.StripeError("down")

    monkeypatch.setattr(stripe_gateway, "subscription_cancel", refuse)
    browser = signed_in("reader@example.com")
    response = browser.post(reverse("readers:data-delete"), {"confirm": "on"})
    assert response.status_code == 400
    assert Subscriber.objects.filter(email="reader@example.com").exists()
    assert Donor.objects.get().email == "reader@example.com"
    assert Gift.objects.get().status == Gift.Status.ACTIVE


def test_erasure_cancels_a_gift_still_waiting_for_its_first_payment(stripe_agrees):
    """A monthly gift waiting for 3-D Secure (incomplete) becomes active when the bank
    approves it: left alone, it would start charging someone who can no longer sign in."""
    gift = GiftFactory(donor=DonorFactory(email="g@example.com"), status=Gift.Status.INCOMPLETE)
    signed_in("g@example.com").post(reverse("readers:data-delete"), {"confirm": "on"})
    assert not Reader.objects.exists()
    cancelled = [kw["subscription_id"] for name, kw in stripe_agrees if name == "cancel"]
    assert cancelled == [gift.stripe_subscription_id]
    assert Gift.objects.get().status == Gift.Status.CANCELLED


def test_erasure_leaves_no_address_in_the_admin_log(
    monthly_reader, stripe_agrees, django_user_model
):
    editor = Client()
    editor.force_login(django_user_model.objects.create_superuser("ed", "ed@x.test", "pw"))
    editor.post(reverse("admin:readers_reader_add"), {"email": "reader@example.com"})
    donor = Donor.objects.get()
    editor.post(
        reverse("admin:donations_donor_change", args=[donor.pk]),
        {"email": donor.email, "name": donor.name},
    )
    assert LogEntry.objects.filter(object_repr__icontains="reader@example.com").exists()
    signed_in("reader@example.com").post(reverse("readers:data-delete"), {"confirm": "on"})
    assert not Reader.objects.exists()
    assert not LogEntry.objects.filter(object_repr__icontains="reader@example.com").exists()
    assert LogEntry.objects.exists()  # the record of what staff did stays, nameless


@pytest.fixture
def stripe_checkout(monkeypatch):
    """Stripe answers a checkout's customer and PaymentIntent calls."""
    payment_intent = {
        "id": "pi_x", "object": "payment_intent", "status": "requires_payment_method",
        "client_secret": "pi_x_secret_x", "amount": 2500, "currency": "usd",
    }  # fmt: skip
    monkeypatch.setattr(stripe_gateway, "customer_create", lambda **kw: {"id": "cus_x"})
    monkeypatch.setattr(
        stripe_gateway, "payment_intent_create_deferred", lambda **kw: payment_intent
    )


def anonymous_checkout(email: str) -> int:
    return Client().post(
        reverse("donations:checkout-intent"),
        {"amount_choice": "other", "custom_amount": "25", "frequency": "once",
         "name": "Mallory", "email": email},
    ).status_code  # fmt: skip


def test_a_checkout_with_the_address_erasure_would_use_cannot_make_it_fail(
    monthly_reader, stripe_agrees, stripe_checkout
):
    """The old scheme renamed a donor to erased-<pk>@erased.invalid, which the donate form
    accepts: one anonymous checkout with it made the victim's erasure fail after their gift
    was cancelled."""
    donor = Donor.objects.get()
    assert anonymous_checkout(f"erased-{donor.pk}@erased.invalid") == 200
    response = signed_in("reader@example.com").post(
        reverse("readers:data-delete"), {"confirm": "on"}
    )
    assert response.status_code == 200
    assert "Your data is deleted" in response.content.decode()
    donor.refresh_from_db()
    assert donor.email is None and donor.name == ""
    assert not Reader.objects.exists() and not Subscriber.objects.exists()


def test_an_erased_donor_holds_no_address_any_form_could_submit(stripe_agrees):
    for address in ("one@example.com", "two@example.com"):
        GiftFactory(donor=DonorFactory(email=address))
        signed_in(address).post(reverse("readers:data-delete"), {"confirm": "on"})
    assert list(Donor.objects.values_list("email", flat=True)) == [None, None]
    assert [str(donor) for donor in Donor.objects.order_by("pk")] == [
        f"Erased donor #{pk}" for pk in Donor.objects.order_by("pk").values_list("pk", flat=True)
    ]


def test_an_erasure_that_fails_locally_changes_nothing(monthly_reader, monkeypatch):
    """The local part is one transaction: a fault in its last step leaves the donor, the
    subscriber and the reader as they were; the gift, cancelled first, is cancelled both
    at Stripe and in our record."""
    from outlet.core import services as core_services
    from outlet.readers import services as reader_services

    cancelled = []
    monkeypatch.setattr(stripe_gateway, "subscription_cancel", lambda **kw: cancelled.append(kw))

    def broken(**kwargs):
        raise RuntimeError("database fault")

    monkeypatch.setattr(core_services, "admin_log_anonymise", broken)
    monkeypatch.setattr(reader_services, "admin_log_anonymise", broken)
    reader = Reader.objects.create(email="reader@example.com")
    with pytest.raises(RuntimeError):
        reader_services.reader_erase(reader=reader)
    assert Donor.objects.get().email == "reader@example.com"
    assert Donor.objects.get().name == "Ada Reader"
    assert Donation.objects.get().public_name == "Ada R."
    assert Subscriber.objects.filter(email="reader@example.com").exists()
    assert Reader.objects.filter(email="reader@example.com").exists()
    assert Gift.objects.get().status == Gift.Status.CANCELLED and len(cancelled) == 1


def test_mail_owed_to_an_erased_donor_is_never_sent(monthly_reader, stripe_agrees, mailoutbox):
    """A refund or a dispute after the erasure owes the donor an email: there is nobody
    to send it to, and the send says so instead of failing (and retrying) for ever."""
    from outlet.donations.models import DonorEmail
    from outlet.donations.services import donor_email_queue, donor_email_send

    signed_in("reader@example.com").post(reverse("readers:data-delete"), {"confirm": "on"})
    mailoutbox.clear()
    donation = Donation.objects.get()
    email_id = donor_email_queue(
        kind=DonorEmail.Kind.RECEIPT, donor_id=donation.donor_id, donation_id=donation.pk
    )
    assert donor_email_send(donor_email_id=email_id) is False
    assert mailoutbox == []
    assert DonorEmail.objects.get().status == DonorEmail.Status.FAILED


@pytest.fixture
def stripe_ended_it(monkeypatch):
    """Stripe ended the gift's subscription already (its webhook never reached us): a
    cancel answers 404 "No such subscription"; the subscription reads as canceled."""

    def gone(**kwargs):
        raise stripe_gateway.InvalidRequestError(
            "No such subscription", "id", code="resource_missing", http_status=404
        )

    monkeypatch.setattr(stripe_gateway, "subscription_cancel", gone)
    monkeypatch.setattr(
        stripe_gateway,
        "subscription_retrieve",
        lambda **kw: {"id": kw["subscription_id"], "status": "canceled", "metadata": {}},
    )


def test_erasure_finishes_when_stripe_has_already_ended_the_gift(monthly_reader, stripe_ended_it):
    """A cancel refused because the subscription is already gone is what the erasure
    wanted: it goes on, instead of refusing the donor's Delete for ever."""
    response = signed_in("reader@example.com").post(
        reverse("readers:data-delete"), {"confirm": "on"}
    )

    assert "Your data is deleted" in response.content.decode()
    assert Donor.objects.get().email is None
    assert Gift.objects.get().status == Gift.Status.CANCELLED
    assert not Reader.objects.exists()


def test_erasure_still_stops_when_stripe_refuses_to_end_a_running_gift(
    monthly_reader, stripe_ended_it, monkeypatch
):
    monkeypatch.setattr(
        stripe_gateway,
        "subscription_retrieve",
        lambda **kw: {"id": kw["subscription_id"], "status": "active", "metadata": {}},
    )

    response = signed_in("reader@example.com").post(
        reverse("readers:data-delete"), {"confirm": "on"}
    )

    assert response.status_code == 400
    assert Donor.objects.get().email == "reader@example.com"
    assert Gift.objects.get().status == Gift.Status.ACTIVE


def test_cancelling_a_gift_stripe_has_already_ended_records_it_ended(
    monthly_reader, stripe_ended_it
):
    """The same refusal behind the account's Cancel: the gift is shown ended, not "could
    not reach our payment processor" on every try."""
    response = signed_in("reader@example.com").post(
        reverse("readers:gift-cancel", args=[monthly_reader.pk])
    )

    assert response.status_code in (200, 302)
    assert Gift.objects.get().status == Gift.Status.CANCELLED
