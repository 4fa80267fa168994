"""Checkout through the real stripe client against localstripe (no mocks)."""

from __future__ import annotations

import pytest

from outlet.donations import services, stripe_gateway
from outlet.donations.models import Donation, DonorEmail, Gift
from tests.donations.localstripe_browser import confirm_card_payment, confirm_card_setup

pytestmark = pytest.mark.django_db


def give(localstripe, *, number, frequency="once", amount=2500, email="reader@example.test", **kw):
    step = services.checkout_start(
        email=email,
        name="Test Reader",
        amount=amount,
        cover_fee=kw.pop("cover_fee", False),
        frequency=frequency,
        ip="203.0.113.9",
        **kw,
    )
    assert step.action == "setup"
    setup_intent_id, error = confirm_card_setup(localstripe, step.client_secret, number)
    return step.donation, setup_intent_id, error


def test_one_time_gift_is_paid_with_card_on_receipt(
    localstripe, django_capture_on_commit_callbacks
):
    donation, setup_intent_id, error = give(localstripe, number="4242424242424242")
    assert error is None
    with django_capture_on_commit_callbacks(execute=False):
        step = services.checkout_charge(donation=donation, setup_intent_id=setup_intent_id)

    assert step.action == "done"
    donation.refresh_from_db()
    assert donation.status == Donation.Status.PAID
    assert donation.amount == 2500
    assert (donation.card_brand, donation.card_last4) == ("visa", "4242")
    assert donation.stripe_payment_intent_id.startswith("pi_")
    assert DonorEmail.objects.filter(kind="receipt", donation=donation).count() == 1


def test_cover_the_fee_charges_the_grossed_up_amount(localstripe, settings):
    settings.DONATION_FEE_PERCENT = 2.9
    settings.DONATION_FEE_FIXED = 30
    donation, setup_intent_id, _ = give(localstripe, number="4242424242424242", cover_fee=True)
    services.checkout_charge(donation=donation, setup_intent_id=setup_intent_id)

    donation.refresh_from_db()
    # 2500 + 30 = 2530 / 0.971 = 2605.56 -> 2606 charged; Stripe's cut leaves 2500.
    assert (donation.amount, donation.fee_amount) == (2606, 106)
    payment = stripe_gateway.payment_intent_retrieve(
        payment_intent_id=donation.stripe_payment_intent_id
    )
    assert payment["amount"] == 2606


def test_declined_card_fails_with_plain_words_and_another_card_succeeds(localstripe):
    donation, setup_intent_id, _ = give(localstripe, number="4000000000000341")
    step = services.checkout_charge(donation=donation, setup_intent_id=setup_intent_id)

    assert step.action == "failed"
    assert "declined" in step.message
    donation.refresh_from_db()
    assert donation.status == Donation.Status.FAILED

    retry, setup_intent_id, _ = give(localstripe, number="4242424242424242")
    assert (
        services.checkout_charge(donation=retry, setup_intent_id=setup_intent_id).action == "done"
    )
    assert Donation.objects.filter(status=Donation.Status.PAID).count() == 1


def test_card_refused_at_setup_never_reaches_our_server(localstripe):
    donation, _, error = give(localstripe, number="4000000000000002")
    assert error and "declined" in error["message"]
    assert Donation.objects.get().status == Donation.Status.PENDING


def test_three_d_secure_gift_is_paid_only_after_the_challenge(localstripe):
    donation, setup_intent_id, error = give(localstripe, number="4000002500003155")
    assert error is None
    step = services.checkout_charge(donation=donation, setup_intent_id=setup_intent_id)
    assert step.action == "authenticate"
    assert Donation.objects.get().status == Donation.Status.PENDING

    confirm_card_payment(localstripe, step.client_secret, approve=True)
    step = services.checkout_refresh(donation=Donation.objects.get())

    assert step.action == "done"
    assert Donation.objects.get().status == Donation.Status.PAID


def test_failed_three_d_secure_is_not_paid(localstripe):
    donation, setup_intent_id, _ = give(localstripe, number="4000002500003155")
    step = services.checkout_charge(donation=donation, setup_intent_id=setup_intent_id)
    confirm_card_payment(localstripe, step.client_secret, approve=False)

    step = services.checkout_refresh(donation=Donation.objects.get())

    assert step.action == "failed"
    assert Donation.objects.get().status == Donation.Status.FAILED


def test_monthly_gift_subscribes_on_a_reused_plan(localstripe):
    donation, setup_intent_id, _ = give(
        localstripe, number="4242424242424242", frequency="month", amount=1000
    )
    step = services.checkout_charge(donation=donation, setup_intent_id=setup_intent_id)

    assert step.action == "done"
    gift = Gift.objects.get()
    donation.refresh_from_db()
    assert gift.status == Gift.Status.ACTIVE
    assert donation.status == Donation.Status.PAID
    assert donation.stripe_invoice_id
    subscription = stripe_gateway.subscription_retrieve(subscription_id=gift.stripe_subscription_id)
    assert subscription["status"] == "active"
    assert subscription["items"]["data"][0]["plan"]["id"] == "outlet-gift-usd-1000-month"

    second, setup_intent_id, _ = give(
        localstripe,
        number="4242424242424242",
        frequency="month",
        amount=1000,
        email="other@example.test",
    )
    assert (
        services.checkout_charge(donation=second, setup_intent_id=setup_intent_id).action == "done"
    )


def test_monthly_gift_with_three_d_secure(localstripe):
    donation, setup_intent_id, _ = give(
        localstripe, number="4000002500003155", frequency="month", amount=1000
    )
    step = services.checkout_charge(donation=donation, setup_intent_id=setup_intent_id)
    assert step.action == "authenticate"
    confirm_card_payment(localstripe, step.client_secret, approve=True)

    step = services.checkout_refresh(donation=Donation.objects.get())

    assert step.action == "done"
    assert Donation.objects.get().status == Donation.Status.PAID
    assert Gift.objects.get().status == Gift.Status.ACTIVE


def test_declined_monthly_gift_leaves_no_live_subscription(localstripe):
    donation, setup_intent_id, _ = give(
        localstripe, number="4000000000000341", frequency="month", amount=1000
    )
    step = services.checkout_charge(donation=donation, setup_intent_id=setup_intent_id)

    assert step.action == "failed"
    gift = Gift.objects.get()
    assert gift.status == Gift.Status.CANCELLED
    assert not DonorEmail.objects.filter(kind__in=["gift_ended", "gift_cancelled"]).exists()


def test_donor_cancels_a_monthly_gift_and_stripe_ends_it(localstripe):
    donation, setup_intent_id, _ = give(
        localstripe, number="4242424242424242", frequency="month", amount=1000
    )
    services.checkout_charge(donation=donation, setup_intent_id=setup_intent_id)
    gift = Gift.objects.get()

    services.gift_cancel(gift=gift)

    gift.refresh_from_db()
    assert gift.status == Gift.Status.CANCELLED
    subscription = stripe_gateway.subscription_retrieve(subscription_id=gift.stripe_subscription_id)
    assert subscription["status"] == "canceled"
    assert DonorEmail.objects.filter(kind="gift_cancelled", gift=gift).count() == 1


def test_donor_changes_the_monthly_amount(localstripe):
    donation, setup_intent_id, _ = give(
        localstripe, number="4242424242424242", frequency="month", amount=1000
    )
    services.checkout_charge(donation=donation, setup_intent_id=setup_intent_id)
    gift = Gift.objects.get()

    services.gift_amount_change(gift=gift, amount=2000)

    gift.refresh_from_db()
    assert gift.amount == 2000
    subscription = stripe_gateway.subscription_retrieve(subscription_id=gift.stripe_subscription_id)
    assert subscription["items"]["data"][0]["plan"]["amount"] == 2000
    assert DonorEmail.objects.filter(kind="amount_changed", gift=gift).count() == 1


def test_donor_updates_the_card(localstripe):
    donation, setup_intent_id, _ = give(
        localstripe, number="4242424242424242", frequency="month", amount=1000
    )
    services.checkout_charge(donation=donation, setup_intent_id=setup_intent_id)
    gift = Gift.objects.get()

    client_secret = services.gift_card_setup_start(gift=gift)
    new_setup_intent, error = confirm_card_setup(localstripe, client_secret, "5555555555554444")
    assert error is None
    services.gift_card_update(gift=gift, setup_intent_id=new_setup_intent)

    gift.refresh_from_db()
    assert gift.card_last4 == "4444"  # localstripe calls every card a visa
    assert DonorEmail.objects.filter(kind="card_updated", gift=gift).count() == 1


def test_refund_is_asked_of_stripe_and_recorded_only_when_confirmed(localstripe, client):
    from tests.donations import stripe_events as se

    donation, setup_intent_id, _ = give(localstripe, number="4242424242424242")
    services.checkout_charge(donation=donation, setup_intent_id=setup_intent_id)
    donation.refresh_from_db()

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
    donation, setup_intent_id, _ = give(localstripe, number="4000002500003155")
    step = services.checkout_charge(donation=donation, setup_intent_id=setup_intent_id)
    donation.refresh_from_db()
    # A forged-looking "succeeded" payload for a PaymentIntent Stripe still holds for 3-D Secure:
    se.post_event(client, se.payment_intent_succeeded_2017(donation))
    assert Donation.objects.get().status == Donation.Status.PENDING

    confirm_card_payment(localstripe, step.client_secret, approve=True)
    se.post_event(client, se.payment_intent_succeeded_2017(donation))
    assert Donation.objects.get().status == Donation.Status.PAID


def test_mismatched_amount_is_checked_with_stripe(localstripe, client):
    from tests.donations import stripe_events as se

    donation, setup_intent_id, _ = give(localstripe, number="4000002500003155")
    services.checkout_charge(donation=donation, setup_intent_id=setup_intent_id)
    donation.refresh_from_db()

    se.post_event(client, se.payment_intent_succeeded_2017(donation, amount=99))

    assert Donation.objects.get().status == Donation.Status.PENDING
