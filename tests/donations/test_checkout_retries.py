"""A double submit, or a retry after an uncertain answer, never starts a second charge."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError

from outlet.donations import services, stripe_gateway
from outlet.donations.models import Donation

pytestmark = pytest.mark.django_db


@pytest.fixture
def stripe_calls(monkeypatch) -> list[tuple[str, str]]:
    """Stripe as the gateway sees it, recording each create with its idempotency key."""
    calls: list[tuple[str, str]] = []

    def record(name: str, answer: dict[str, Any]):
        def call(**kwargs: Any) -> dict[str, Any]:
            calls.append((name, kwargs.get("idempotency_key", "")))
            return answer

        return call

    payment_intent = {
        "id": "pi_1",
        "object": "payment_intent",
        "status": "requires_payment_method",
        "client_secret": "pi_1_secret_x",
        "amount": 2500,
        "currency": "usd",
    }
    monkeypatch.setattr(stripe_gateway, "customer_create", record("customer", {"id": "cus_1"}))
    monkeypatch.setattr(
        stripe_gateway, "payment_intent_create_deferred", record("payment", payment_intent)
    )
    monkeypatch.setattr(stripe_gateway, "payment_intent_retrieve", lambda **kw: payment_intent)
    return calls


def start(checkout_key: str) -> services.CheckoutStep:
    return services.checkout_intent_create(
        email="reader@example.test",
        name="Test Reader",
        amount=2500,
        cover_fee=False,
        frequency="once",
        ip="203.0.113.9",
        checkout_key=checkout_key,
    )


def test_double_submit_of_one_checkout_records_one_donation(stripe_calls):
    first = start("k" * 32)
    second = start("k" * 32)

    assert second.donation.pk == first.donation.pk
    assert Donation.objects.count() == 1
    assert second.client_secret == first.client_secret
    # The second submit finds the payment the first made: nothing is created twice.
    assert [name for name, _ in stripe_calls] == ["customer", "payment"]


def test_resubmit_of_a_paid_checkout_answers_done(stripe_calls):
    first = start("p" * 32)
    Donation.objects.filter(pk=first.donation.pk).update(status=Donation.Status.PAID)

    again = start("p" * 32)

    assert (again.action, again.donation.pk) == ("done", first.donation.pk)
    assert Donation.objects.count() == 1


def test_a_lost_answer_to_the_payments_creation_charges_nothing(stripe_calls, monkeypatch):
    """The PaymentIntent may exist at Stripe, but the browser never got its secret, so it
    can never be confirmed: the checkout fails plainly and a new one may start."""
    keys: list[str] = []

    def lost_answer(**kwargs: Any) -> dict[str, Any]:
        keys.append(kwargs["idempotency_key"])
        raise stripe_gateway.StripeError("connection reset after the request was sent")

    monkeypatch.setattr(stripe_gateway, "payment_intent_create_deferred", lost_answer)

    with pytest.raises(ValidationError) as refused:
        start("u" * 32)

    assert "nothing was charged" in " ".join(refused.value.messages).lower()
    assert Donation.objects.get().status == Donation.Status.FAILED


def test_replayed_submit_of_a_failed_donation_is_not_answered_done(stripe_calls):
    donation = start("f" * 32).donation
    Donation.objects.filter(pk=donation.pk).update(
        status=Donation.Status.FAILED, failure_message="Your card was declined."
    )

    step = start("f" * 32)

    assert (step.action, step.message) == ("failed", "Your card was declined.")
