"""A request Stripe refuses as malformed (HTTP 400, invalid_request_error) charged nothing:
the reader is told so, in words about their details, never "we could not reach our
payment processor" nor asked to wait for a charge that cannot exist."""

from __future__ import annotations

import pytest
import stripe
from django.urls import reverse

from outlet.donations import stripe_gateway
from outlet.donations.models import Donation

pytestmark = pytest.mark.django_db

FORM = {
    "amount_choice": "other",
    "custom_amount": "25",
    "frequency": "once",
    "name": "Ada Reader",
    "email": "ada@localhost",
}


def refused(**kwargs):
    raise stripe.InvalidRequestError("Invalid email address: ada@localhost", param="email")


@pytest.mark.parametrize("refusing", ["customer_create", "payment_intent_create_deferred"])
def test_details_stripe_refuses_at_the_submit_are_explained(client, monkeypatch, refusing):
    monkeypatch.setattr(stripe_gateway, "customer_create", lambda **kw: {"id": "cus_1"})
    monkeypatch.setattr(stripe_gateway, refusing, refused)

    response = client.post(reverse("donations:checkout-intent"), FORM)

    message = response.json()["message"]
    assert response.status_code == 400
    assert "could not reach" not in message
    assert "check" in message and "nothing was charged" in message.lower()
    assert Donation.objects.get().status == Donation.Status.FAILED
