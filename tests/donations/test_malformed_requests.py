"""A request Stripe refuses as malformed (HTTP 400, invalid_request_error) charged nothing:
the reader is told so, in words about their details, never "we could not reach our
payment processor" nor asked to wait for a charge that cannot exist."""

from __future__ import annotations

import pytest
import stripe
from django.urls import reverse

from outlet.donations import services, stripe_gateway
from outlet.donations.models import Donation
from tests.factories import DonationFactory

pytestmark = pytest.mark.django_db


def refused(**kwargs):
    raise stripe.InvalidRequestError("Invalid email address: ada@localhost", param="email")


def test_details_stripe_refuses_at_the_start_are_explained(client, monkeypatch):
    monkeypatch.setattr(stripe_gateway, "customer_create", refused)

    response = client.post(
        reverse("donations:checkout-start"),
        {
            "amount_choice": "other",
            "custom_amount": "25",
            "frequency": "once",
            "name": "Ada Reader",
            "email": "ada@localhost",
        },
    )

    message = response.json()["message"]
    assert response.status_code == 400
    assert "could not reach" not in message
    assert "check" in message and "nothing was charged" in message.lower()
    assert Donation.objects.get().status == Donation.Status.FAILED


def test_a_charge_stripe_refuses_as_malformed_fails_plainly(monkeypatch):
    donation = DonationFactory(stripe_payment_intent_id=None, card_last4="")
    monkeypatch.setattr(services.checkout, "card_ready", lambda **kw: ("pm_1", "visa", "4242"))
    monkeypatch.setattr(stripe_gateway, "payment_intent_create", refused)

    step = services.checkout_charge(donation=donation, setup_intent_id="seti_1")

    assert step.action == "failed"  # not "uncertain": nothing can have been charged
    assert "nothing was charged" in step.message.lower()
    assert Donation.objects.get(pk=donation.pk).status == Donation.Status.FAILED
