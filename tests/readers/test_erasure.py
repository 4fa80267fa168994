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
    assert "reader@example.com" not in donor.email and donor.name == ""
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
