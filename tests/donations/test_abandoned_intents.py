"""A checkout left after its submit created the payment at Stripe (the Payment Element's
deferred intent) expires too: Stripe's payment is read, cancelled while nothing was paid,
and the donation marked abandoned; money that arrived (or is arriving) is never abandoned.
Against the contract stub: every request checked against the pinned SDK's types."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from outlet.donations import services
from outlet.donations.models import Donation, Gift
from tests.donations import test_stripe_contract
from tests.donations.test_stripe_contract import assert_accepted

pytestmark = pytest.mark.django_db
stub = test_stripe_contract.stub  # current Stripe, answered by the contract stub


def submitted(frequency: str = "once", *, key: str = "checkout-1") -> Donation:
    step = services.checkout_intent_create(
        email="reader@example.org",
        name="A Reader",
        amount=2500,
        cover_fee=False,
        frequency=frequency,
        ip="203.0.113.9",
        checkout_key=key,
    )
    assert step.action == "confirm"
    return step.donation


def age(donation: Donation, hours: int = 25) -> None:
    Donation.objects.filter(pk=donation.pk).update(
        created_at=timezone.now() - timedelta(hours=hours)
    )


def cancels(stub) -> list[str]:
    return [r.path for r in stub.requests if r.method == "post" and r.path.endswith("/cancel")]


def test_an_unconfirmed_payment_intent_is_cancelled_and_its_donation_abandoned(stub, settings):
    settings.DONATION_CHECKOUT_EXPIRY_HOURS = 24
    donation = submitted()
    age(donation)

    assert services.checkouts_abandoned_expire() == 1
    services.checkouts_abandoned_expire()  # a repeat asks Stripe to cancel nothing more

    assert_accepted(stub)
    donation.refresh_from_db()
    assert donation.status == Donation.Status.ABANDONED
    assert "nothing was charged" in donation.failure_message
    assert stub.objects[donation.stripe_payment_intent_id]["status"] == "canceled"
    assert cancels(stub) == [f"/v1/payment_intents/{donation.stripe_payment_intent_id}/cancel"]


def test_a_recent_unconfirmed_payment_intent_is_left_alone(stub, settings):
    settings.DONATION_CHECKOUT_EXPIRY_HOURS = 24
    donation = submitted()
    age(donation, hours=2)

    services.checkouts_abandoned_expire()

    assert Donation.objects.get(pk=donation.pk).status == Donation.Status.PENDING
    assert cancels(stub) == []


@pytest.mark.parametrize("status", ["succeeded", "processing"])
def test_money_that_arrived_or_is_arriving_is_never_abandoned(stub, settings, status):
    """The reader confirmed (or a bank debit is on its way) but no webhook came yet."""
    settings.DONATION_CHECKOUT_EXPIRY_HOURS = 24
    donation = submitted()
    if status == "succeeded":
        stub.authenticate(donation.stripe_payment_intent_id)
    else:
        stub.objects[donation.stripe_payment_intent_id]["status"] = "processing"
    age(donation)

    services.checkouts_abandoned_expire()

    donation.refresh_from_db()
    assert donation.status != Donation.Status.ABANDONED
    assert cancels(stub) == []
    assert stub.objects[donation.stripe_payment_intent_id]["status"] == status


def test_a_payment_intent_confirmed_while_it_expires_is_not_abandoned(stub, settings):
    """Stripe refuses to cancel a PaymentIntent the browser confirmed a moment ago: the
    donation stays for the payment path."""
    settings.DONATION_CHECKOUT_EXPIRY_HOURS = 24
    donation = submitted()
    age(donation)
    answer = stub._answer

    def confirmed_meanwhile(method, path, params):
        if path.endswith("/cancel"):
            stub.authenticate(donation.stripe_payment_intent_id)
            return stub._error(
                400,
                "invalid_request_error",
                "You cannot cancel this PaymentIntent because it has a status of succeeded.",
                code="payment_intent_unexpected_state",
            )
        return answer(method, path, params)

    stub._answer = confirmed_meanwhile

    services.checkouts_abandoned_expire()

    assert Donation.objects.get(pk=donation.pk).status != Donation.Status.ABANDONED


def test_stripe_unreachable_leaves_the_checkout_for_the_next_run(stub, settings):
    settings.DONATION_CHECKOUT_EXPIRY_HOURS = 24
    donation = submitted()
    age(donation)
    stub.down.add("/v1/payment_intents")

    services.checkouts_abandoned_expire()

    assert Donation.objects.get(pk=donation.pk).status == Donation.Status.PENDING
    stub.down.clear()
    services.checkouts_abandoned_expire()
    assert Donation.objects.get(pk=donation.pk).status == Donation.Status.ABANDONED


def test_an_incomplete_subscription_is_cancelled_and_its_gift_ended(stub, settings):
    settings.DONATION_CHECKOUT_EXPIRY_HOURS = 12  # before Stripe's own 23 hours
    donation = submitted("month")
    age(donation, hours=13)
    subscription_id = donation.gift.stripe_subscription_id

    services.checkouts_abandoned_expire()
    services.checkouts_abandoned_expire()

    assert_accepted(stub)
    donation.refresh_from_db()
    assert donation.status == Donation.Status.ABANDONED
    gift = Gift.objects.get(pk=donation.gift_id)
    assert gift.status == Gift.Status.CANCELLED
    assert gift.end_reason == Gift.EndReason.PAYMENT_FAILED
    assert stub.objects[subscription_id]["status"] == "canceled"
    deletes = [r for r in stub.requests if r.method == "delete"]
    assert len(deletes) == 1


def test_a_subscription_stripe_expired_itself_is_marked_without_a_cancel(stub, settings):
    settings.DONATION_CHECKOUT_EXPIRY_HOURS = 24
    donation = submitted("month")
    age(donation)
    stub.objects[donation.gift.stripe_subscription_id]["status"] = "incomplete_expired"

    services.checkouts_abandoned_expire()

    assert Donation.objects.get(pk=donation.pk).status == Donation.Status.ABANDONED
    assert Gift.objects.get(pk=donation.gift_id).status == Gift.Status.CANCELLED
    assert not [r for r in stub.requests if r.method == "delete"]


def test_a_subscription_whose_first_payment_succeeded_is_never_abandoned(stub, settings):
    settings.DONATION_CHECKOUT_EXPIRY_HOURS = 24
    donation = submitted("month")
    invoice = stub.objects[stub.objects[donation.gift.stripe_subscription_id]["latest_invoice"]]
    payment_intent_id = invoice["confirmation_secret"]["client_secret"].split("_secret_")[0]
    stub.authenticate(payment_intent_id)  # paid; its webhook not here yet
    age(donation)

    services.checkouts_abandoned_expire()

    donation.refresh_from_db()
    assert donation.status != Donation.Status.ABANDONED
    assert Gift.objects.get(pk=donation.gift_id).status != Gift.Status.CANCELLED
    assert not [r for r in stub.requests if r.method == "delete"]
