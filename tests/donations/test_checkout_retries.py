"""A double submit, or a retry after an uncertain answer, never starts a second charge."""

from __future__ import annotations

from typing import Any

import pytest

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

    monkeypatch.setattr(stripe_gateway, "customer_create", record("customer", {"id": "cus_1"}))
    monkeypatch.setattr(
        stripe_gateway,
        "setup_intent_create",
        record("setup", {"id": "seti_1", "client_secret": "seti_1_secret"}),
    )
    return calls


def start(checkout_key: str) -> services.CheckoutStep:
    return services.checkout_start(
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
    # Stripe is asked again only under the first submit's keys, so it answers the same objects.
    assert len({key for _, key in stripe_calls}) == 2


def test_resubmit_of_a_paid_checkout_answers_done(stripe_calls):
    first = start("p" * 32)
    Donation.objects.filter(pk=first.donation.pk).update(status=Donation.Status.PAID)

    again = start("p" * 32)

    assert (again.action, again.donation.pk) == ("done", first.donation.pk)
    assert Donation.objects.count() == 1


def test_uncertain_charge_answers_uncertain_and_its_retry_reuses_the_key(stripe_calls, monkeypatch):
    donation = start("u" * 32).donation
    monkeypatch.setattr(services.checkout, "card_ready", lambda **kw: ("pm_1", "visa", "4242"))
    keys: list[str] = []

    def lost_answer(**kwargs: Any) -> dict[str, Any]:
        keys.append(kwargs["idempotency_key"])
        raise stripe_gateway.StripeError("connection reset after the charge was sent")

    monkeypatch.setattr(stripe_gateway, "payment_intent_create", lost_answer)

    step = services.checkout_charge(donation=donation, setup_intent_id="seti_1")
    services.checkout_charge(donation=donation, setup_intent_id="seti_1")

    assert step.action == "uncertain"
    assert "nothing was charged" not in step.message.lower()
    assert "twice" not in step.message.lower()  # no promise the browser could break
    assert len(keys) == 2 and keys[0] == keys[1]
    donation.refresh_from_db()
    assert donation.status == Donation.Status.PENDING


def test_replayed_charge_of_a_failed_donation_is_not_answered_done(stripe_calls):
    donation = start("f" * 32).donation
    Donation.objects.filter(pk=donation.pk).update(
        status=Donation.Status.FAILED, failure_message="Your card was declined."
    )
    donation.refresh_from_db()

    step = services.checkout_charge(donation=donation, setup_intent_id="seti_1")

    assert (step.action, step.message) == ("failed", "Your card was declined.")
