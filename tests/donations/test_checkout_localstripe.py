"""Checkout through the real stripe client against localstripe (no mocks): the Payment
Element's flow, the browser's confirmPayment done over HTTP as the shim does it."""

from __future__ import annotations

import uuid

import pytest

from outlet.donations import services, stripe_gateway
from outlet.donations.models import Donation, DonorEmail, Gift
from tests.donations.localstripe_browser import (
    confirm_card_payment,
    confirm_card_setup,
    confirm_payment,
)

pytestmark = pytest.mark.django_db


def give(
    localstripe,
    *,
    number,
    frequency="once",
    amount=2500,
    email="reader@example.test",
    approve_3ds: bool | None = True,
    **kw,
):
    """Submit the donate form, then confirm the payment in the browser with `number`;
    (step, Stripe's error or None). approve_3ds=None leaves a challenge unanswered."""
    step = services.checkout_intent_create(
        email=email,
        name="Test Reader",
        amount=amount,
        cover_fee=kw.pop("cover_fee", False),
        frequency=frequency,
        ip="203.0.113.9",
        checkout_key=uuid.uuid4().hex,
        **kw,
    )
    assert step.action == "confirm"
    error = confirm_payment(localstripe, step.client_secret, number, approve_3ds=approve_3ds)
    return step, error


def settle(step: services.CheckoutStep) -> services.CheckoutStep:
    """The page asks our server after confirmPayment, whatever the browser said."""
    return services.checkout_confirmed(donation=Donation.objects.get(pk=step.donation.pk))


def test_one_time_gift_is_paid_with_card_on_receipt(
    localstripe, django_capture_on_commit_callbacks
):
    step, error = give(localstripe, number="4242424242424242")
    assert error is None
    with django_capture_on_commit_callbacks(execute=False):
        step = settle(step)

    assert step.action == "done"
    donation = Donation.objects.get()
    assert donation.status == Donation.Status.PAID
    assert donation.amount == 2500
    assert (donation.card_brand, donation.card_last4) == ("visa", "4242")
    assert donation.stripe_payment_intent_id.startswith("pi_")
    assert DonorEmail.objects.filter(kind="receipt", donation=donation).count() == 1


def test_cover_the_fee_charges_the_grossed_up_amount(localstripe, settings):
    settings.DONATION_FEE_PERCENT = 2.9
    settings.DONATION_FEE_FIXED = 30
    step, _ = give(localstripe, number="4242424242424242", cover_fee=True)
    settle(step)

    donation = Donation.objects.get()
    # 2500 + 30 = 2530 / 0.971 = 2605.56 -> 2606 charged; Stripe's cut leaves 2500.
    assert (donation.amount, donation.fee_amount) == (2606, 106)
    payment = stripe_gateway.payment_intent_retrieve(
        payment_intent_id=donation.stripe_payment_intent_id
    )
    assert payment["amount"] == 2606


def test_declined_card_fails_with_plain_words_and_another_card_succeeds(localstripe):
    step, error = give(localstripe, number="4000000000000341")
    assert error and "declined" in error["message"]
    step = settle(step)

    assert step.action == "failed"
    assert "declined" in step.message
    assert Donation.objects.get().status == Donation.Status.FAILED

    retry, _ = give(localstripe, number="4242424242424242")
    assert settle(retry).action == "done"
    assert Donation.objects.filter(status=Donation.Status.PAID).count() == 1


def test_three_d_secure_gift_is_paid_only_after_the_challenge(localstripe):
    step, error = give(localstripe, number="4000002500003155", approve_3ds=None)
    assert error is None
    settle(step)  # the page asks before the challenge is answered: not paid
    assert Donation.objects.get().status == Donation.Status.PENDING

    confirm_card_payment(localstripe, step.client_secret, approve=True)
    step = settle(step)

    assert step.action == "done"
    assert Donation.objects.get().status == Donation.Status.PAID


def test_failed_three_d_secure_is_not_paid(localstripe):
    step, _ = give(localstripe, number="4000002500003155", approve_3ds=False)

    step = settle(step)

    assert step.action == "failed"
    assert Donation.objects.get().status == Donation.Status.FAILED


def test_monthly_gift_subscribes_on_a_reused_plan(localstripe):
    step, error = give(localstripe, number="4242424242424242", frequency="month", amount=1000)
    assert error is None
    step = settle(step)

    assert step.action == "done"
    gift = Gift.objects.get()
    donation = Donation.objects.get()
    assert gift.status == Gift.Status.ACTIVE
    assert donation.status == Donation.Status.PAID
    assert donation.stripe_invoice_id
    subscription = stripe_gateway.subscription_retrieve(subscription_id=gift.stripe_subscription_id)
    assert subscription["status"] == "active"
    assert subscription["items"]["data"][0]["plan"]["id"] == "outlet-gift-usd-1000-month"

    second, _ = give(
        localstripe,
        number="4242424242424242",
        frequency="month",
        amount=1000,
        email="other@example.test",
    )
    assert settle(second).action == "done"


def test_monthly_gift_with_three_d_secure(localstripe):
    step, _ = give(
        localstripe, number="4000002500003155", frequency="month", amount=1000, approve_3ds=None
    )
    assert Donation.objects.get().status == Donation.Status.PENDING
    confirm_card_payment(localstripe, step.client_secret, approve=True)

    step = settle(step)

    assert step.action == "done"
    assert Donation.objects.get().status == Donation.Status.PAID
    assert Gift.objects.get().status == Gift.Status.ACTIVE


def test_declined_monthly_gift_leaves_no_live_subscription(localstripe):
    step, _ = give(localstripe, number="4000000000000341", frequency="month", amount=1000)
    step = settle(step)

    assert step.action == "failed"
    gift = Gift.objects.get()
    assert gift.status == Gift.Status.CANCELLED
    assert not DonorEmail.objects.filter(kind__in=["gift_ended", "gift_cancelled"]).exists()


def monthly(localstripe) -> Gift:
    step, _ = give(localstripe, number="4242424242424242", frequency="month", amount=1000)
    assert settle(step).action == "done"
    return Gift.objects.get()


def test_donor_cancels_a_monthly_gift_and_stripe_ends_it(localstripe):
    gift = monthly(localstripe)

    services.gift_cancel(gift=gift)

    gift.refresh_from_db()
    assert gift.status == Gift.Status.CANCELLED
    subscription = stripe_gateway.subscription_retrieve(subscription_id=gift.stripe_subscription_id)
    assert subscription["status"] == "canceled"
    assert DonorEmail.objects.filter(kind="gift_cancelled", gift=gift).count() == 1


def test_donor_changes_the_monthly_amount(localstripe):
    gift = monthly(localstripe)

    services.gift_amount_change(gift=gift, amount=2000)

    gift.refresh_from_db()
    assert gift.amount == 2000
    subscription = stripe_gateway.subscription_retrieve(subscription_id=gift.stripe_subscription_id)
    assert subscription["items"]["data"][0]["plan"]["amount"] == 2000
    assert DonorEmail.objects.filter(kind="amount_changed", gift=gift).count() == 1


def test_donor_updates_the_card(localstripe):
    gift = monthly(localstripe)

    client_secret = services.gift_card_setup_start(gift=gift)
    new_setup_intent, error = confirm_card_setup(localstripe, client_secret, "5555555555554444")
    assert error is None
    services.gift_card_update(gift=gift, setup_intent_id=new_setup_intent)

    gift.refresh_from_db()
    assert gift.card_last4 == "4444"  # localstripe calls every card a visa
    assert DonorEmail.objects.filter(kind="card_updated", gift=gift).count() == 1


def test_an_abandoned_payment_is_cancelled_at_localstripe(localstripe, settings):
    """The expiry's cancel, against localstripe: an old tab's late confirm then fails."""
    from datetime import timedelta

    from django.utils import timezone

    step = services.checkout_intent_create(
        email="left@example.test", name="Left", amount=2500, cover_fee=False,
        frequency="once", ip="203.0.113.9", checkout_key=uuid.uuid4().hex,
    )  # fmt: skip
    Donation.objects.update(created_at=timezone.now() - timedelta(days=2))

    services.checkouts_abandoned_expire()

    assert Donation.objects.get().status == Donation.Status.ABANDONED
    assert confirm_payment(localstripe, step.client_secret, "4242424242424242") is not None
    payment = stripe_gateway.payment_intent_retrieve(
        payment_intent_id=Donation.objects.get().stripe_payment_intent_id
    )
    assert payment["status"] == "canceled"


def test_refund_is_asked_of_stripe_and_recorded_only_when_confirmed(localstripe, client):
    from tests.donations import stripe_events as se

    step, _ = give(localstripe, number="4242424242424242")
    settle(step)
    donation = Donation.objects.get()

    services.donation_refund(donation=donation)
    services.donation_refund(donation=donation)

    donation.refresh_from_db()
    assert donation.refund_requested_at is not None
    assert donation.status == Donation.Status.PAID
    payment = stripe_gateway.payment_intent_retrieve(
        payment_intent_id=donation.stripe_payment_intent_id
    )
    charge = payment["charges"]["data"][0]
    assert charge["amount_refunded"] == donation.amount
    # localstripe sends no charge.refunded: Stripe's current-shape event stands in.
    se.post_event(client, se.charge_refunded_current(donation))
    donation.refresh_from_db()
    assert donation.status == Donation.Status.REFUNDED


def test_refetch_always_reads_the_payment_from_stripe(localstripe, settings, client):
    from tests.donations import stripe_events as se

    settings.STRIPE_WEBHOOK_REFETCH = "always"
    step, _ = give(localstripe, number="4000002500003155", approve_3ds=None)
    donation = Donation.objects.get()
    # A forged-looking "succeeded" payload for a PaymentIntent Stripe still holds for 3-D Secure:
    se.post_event(client, se.payment_intent_succeeded_2017(donation))
    assert Donation.objects.get().status == Donation.Status.PENDING

    confirm_card_payment(localstripe, step.client_secret, approve=True)
    se.post_event(client, se.payment_intent_succeeded_2017(donation))
    assert Donation.objects.get().status == Donation.Status.PAID


def test_mismatched_amount_is_checked_with_stripe(localstripe, client):
    from tests.donations import stripe_events as se

    give(localstripe, number="4000002500003155", approve_3ds=None)
    donation = Donation.objects.get()

    se.post_event(client, se.payment_intent_succeeded_2017(donation, amount=99))

    assert Donation.objects.get().status == Donation.Status.PENDING
