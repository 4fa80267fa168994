"""The Stripe webhook: verified, recorded once, applied once, in any order."""

from __future__ import annotations

import json

import pytest

from outlet.donations.models import Donation, DonorEmail, Gift, StripeEvent
from tests.donations import stripe_events as se
from tests.factories import DonationFactory, GiftFactory

pytestmark = pytest.mark.django_db


def receipts(donation) -> int:
    return DonorEmail.objects.filter(kind=DonorEmail.Kind.RECEIPT, donation=donation).count()


def test_bad_signature_is_refused_and_changes_nothing(client):
    donation = DonationFactory()
    evt = se.payment_intent_succeeded_2017(donation)
    payload = json.dumps(evt)
    forged = se.sign(payload, secret="whsec_someone_else")

    response = se.post_event(client, evt, signature=forged)

    assert response.status_code == 400
    donation.refresh_from_db()
    assert donation.status == Donation.Status.PENDING
    assert not StripeEvent.objects.exists()


def test_missing_signature_is_refused(client):
    donation = DonationFactory()
    response = se.post_event(client, se.payment_intent_succeeded_2017(donation), signature="")
    assert response.status_code == 400
    assert Donation.objects.get().status == Donation.Status.PENDING


@pytest.mark.parametrize("shape", ["2017", "current"])
def test_payment_intent_succeeded_records_payment_and_owes_one_receipt(
    client, django_capture_on_commit_callbacks, shape
):
    donation = DonationFactory(amount=2500)
    build = (
        se.payment_intent_succeeded_2017 if shape == "2017" else se.payment_intent_succeeded_current
    )
    evt = build(donation)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = se.post_event(client, evt)

    assert response.status_code == 200
    donation.refresh_from_db()
    assert donation.status == Donation.Status.PAID
    assert donation.stripe_charge_id.startswith("ch_")
    assert donation.paid_at is not None
    assert receipts(donation) == 1
    assert len(queued) == 1


def test_repeated_webhook_records_payment_once(client, django_capture_on_commit_callbacks):
    donation = DonationFactory()
    evt = se.payment_intent_succeeded_2017(donation)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        first = se.post_event(client, evt)
        second = se.post_event(client, evt)

    assert first.status_code == second.status_code == 200
    assert second.content == b"Already processed."
    assert StripeEvent.objects.count() == 1
    assert receipts(donation) == 1
    assert len(queued) == 1


def test_same_fact_in_two_events_is_applied_once(client, django_capture_on_commit_callbacks):
    """Two deliveries with different event ids (what a handler run twice looks like)."""
    donation = DonationFactory()
    with django_capture_on_commit_callbacks(execute=False) as queued:
        se.post_event(client, se.payment_intent_succeeded_2017(donation))
        se.post_event(client, se.payment_intent_succeeded_2017(donation))

    donation.refresh_from_db()
    assert donation.status == Donation.Status.PAID
    assert receipts(donation) == 1
    assert len(queued) == 1


def test_webhook_before_checkout_saved_payment_intent_links_by_metadata(client):
    donation = DonationFactory(stripe_payment_intent_id=None)
    evt = se.payment_intent_succeeded_2017(donation)
    evt["data"]["object"]["id"] = "pi_raced_the_request"

    se.post_event(client, evt)

    donation.refresh_from_db()
    assert donation.stripe_payment_intent_id == "pi_raced_the_request"
    assert donation.status == Donation.Status.PAID


def test_stale_payment_intent_of_an_earlier_attempt_is_ignored(client):
    donation = DonationFactory(stripe_payment_intent_id="pi_second_card")
    evt = se.payment_intent_succeeded_2017(donation)
    evt["data"]["object"]["id"] = "pi_first_card"
    evt["data"]["object"]["status"] = "requires_payment_method"
    # A real decline: were it the donation's own PaymentIntent, it would fail the donation.
    evt["data"]["object"]["last_payment_error"] = {
        "type": "card_error",
        "code": "card_declined",
        "message": "Your card was declined.",
    }
    evt["type"] = "payment_intent.payment_failed"

    se.post_event(client, evt)

    assert Donation.objects.get().status == Donation.Status.PENDING


@pytest.mark.parametrize("shape", ["2017", "current"])
def test_payment_failed_marks_donation_failed_and_sends_no_receipt(client, shape):
    donation = DonationFactory()
    build = se.payment_intent_failed_2017 if shape == "2017" else se.payment_intent_failed_current
    response = se.post_event(client, build(donation))
    assert response.status_code == 200
    donation.refresh_from_db()
    assert donation.status == Donation.Status.FAILED
    assert donation.failure_message
    assert receipts(donation) == 0


def test_unknown_event_type_is_acknowledged_and_ignored(client):
    response = se.post_event(
        client, se.event("customer.created", {"id": "cus_1", "object": "customer"})
    )
    assert response.status_code == 200
    assert not StripeEvent.objects.exists()


def test_unknown_payment_intent_is_acknowledged_and_pays_nothing(client):
    """A PaymentIntent we never stored, whose metadata names a donation that already
    has its own PaymentIntent: acknowledged, and that donation stays unpaid."""
    ours = DonationFactory(stripe_payment_intent_id="pi_ours")
    evt = se.payment_intent_succeeded_2017(ours)
    evt["data"]["object"]["id"] = "pi_not_ours"

    response = se.post_event(client, evt)

    assert response.status_code == 200
    ours.refresh_from_db()
    assert ours.status == Donation.Status.PENDING
    assert receipts(ours) == 0


# --- Recurring gifts ---------------------------------------------------------------


def checkout_gift(**kwargs):
    """A gift as checkout leaves it: incomplete, with its first donation pending."""
    gift = GiftFactory(status=Gift.Status.INCOMPLETE, **kwargs)
    donation = DonationFactory(
        donor=gift.donor,
        gift=gift,
        frequency=gift.interval,
        amount=gift.amount,
        stripe_payment_intent_id=None,
    )
    return gift, donation


@pytest.mark.parametrize("shape", ["2017", "current"])
def test_first_invoice_claims_the_checkout_donation(client, shape):
    gift, donation = checkout_gift()
    build = se.invoice_2017 if shape == "2017" else se.invoice_current
    se.post_event(client, build(gift, invoice_id="in_first"))

    donation.refresh_from_db()
    gift.refresh_from_db()
    assert donation.stripe_invoice_id == "in_first"
    assert donation.status == Donation.Status.PAID
    assert gift.status == Gift.Status.ACTIVE
    assert Donation.objects.count() == 1
    assert receipts(donation) == 1


def test_invoice_paid_and_invoice_payment_succeeded_apply_once(client):
    gift, donation = checkout_gift()
    se.post_event(client, se.invoice_current(gift, invoice_id="in_1", type_="invoice.paid"))
    se.post_event(
        client, se.invoice_current(gift, invoice_id="in_1", type_="invoice.payment_succeeded")
    )
    se.post_event(client, se.invoice_2017(gift, invoice_id="in_1"))

    assert Donation.objects.count() == 1
    assert Donation.objects.get().status == Donation.Status.PAID
    assert DonorEmail.objects.filter(kind=DonorEmail.Kind.RECEIPT).count() == 1


def test_repeated_invoice_event_does_not_ask_stripe_again(client, monkeypatch):
    from outlet.donations import stripe_gateway

    gift, _ = checkout_gift()
    asked: list[str] = []

    def fill(*, invoice):
        asked.append(invoice["id"])
        return invoice

    monkeypatch.setattr(stripe_gateway, "invoice_payments_fill", fill)
    event = se.invoice_current(gift, invoice_id="in_1", type_="invoice.paid")
    first = se.post_event(client, event)
    again = se.post_event(client, event)

    assert (first.status_code, again.status_code) == (200, 200)
    assert asked == ["in_1"]


def test_renewal_creates_its_own_donation_with_its_own_receipt(client):
    gift, donation = checkout_gift(card_last4="4444")
    se.post_event(client, se.invoice_current(gift, invoice_id="in_first"))
    se.post_event(client, se.invoice_current(gift, invoice_id="in_second"))
    se.post_event(client, se.invoice_current(gift, invoice_id="in_second"))

    paid = Donation.objects.filter(gift=gift, status=Donation.Status.PAID)
    assert paid.count() == 2
    renewal = paid.get(stripe_invoice_id="in_second")
    assert renewal.card_last4 == "4444"
    assert DonorEmail.objects.filter(kind=DonorEmail.Kind.RECEIPT).count() == 2


@pytest.mark.parametrize("shape", ["2017", "current"])
def test_invoice_paid_before_subscription_created_ends_active(client, shape):
    """ "incomplete" is a status we follow (a gift starts there), but never back to it:
    the late "created" event arrives after the first invoice was paid."""
    gift, donation = checkout_gift()
    se.post_event(client, se.invoice_current(gift, invoice_id="in_first"))
    created = (
        se.subscription_2017(gift, status="incomplete", type_="customer.subscription.created")
        if shape == "2017"
        else se.subscription_current(
            gift, status="incomplete", type_="customer.subscription.created"
        )
    )
    se.post_event(client, created)

    gift.refresh_from_db()
    donation.refresh_from_db()
    assert gift.status == Gift.Status.ACTIVE
    assert donation.status == Donation.Status.PAID


def test_invoice_before_subscription_id_is_known_finds_gift_by_metadata(client):
    gift, donation = checkout_gift(stripe_subscription_id=None)
    evt = se.invoice_current(gift, invoice_id="in_first")
    evt["data"]["object"]["parent"]["subscription_details"]["subscription"] = "sub_new"

    se.post_event(client, evt)

    gift.refresh_from_db()
    assert gift.stripe_subscription_id == "sub_new"
    assert Donation.objects.get().status == Donation.Status.PAID


def test_foreign_invoice_with_colliding_gift_id_does_not_attach(client):
    """An older system's subscription whose metadata also says `gift_id`: another
    customer's invoice must not tie that subscription and its payment to our gift."""
    gift, donation = checkout_gift(stripe_subscription_id=None)
    evt = se.invoice_current(gift, invoice_id="in_foreign")
    evt["data"]["object"]["customer"] = "cus_someone_else"
    evt["data"]["object"]["parent"]["subscription_details"]["subscription"] = "sub_foreign"

    response = se.post_event(client, evt)

    assert response.status_code == 200
    gift.refresh_from_db()
    donation.refresh_from_db()
    assert gift.stripe_subscription_id is None
    assert gift.status == Gift.Status.INCOMPLETE
    assert donation.status == Donation.Status.PENDING
    assert not Donation.objects.filter(stripe_invoice_id="in_foreign").exists()

    ours = se.invoice_current(gift, invoice_id="in_first")
    ours["data"]["object"]["parent"]["subscription_details"]["subscription"] = "sub_ours"
    se.post_event(client, ours)
    gift.refresh_from_db()
    donation.refresh_from_db()
    assert gift.stripe_subscription_id == "sub_ours"
    assert donation.status == Donation.Status.PAID


def test_foreign_subscription_with_colliding_gift_id_does_not_attach(client):
    gift, _ = checkout_gift(stripe_subscription_id=None)
    evt = se.subscription_current(gift, status="canceled", type_="customer.subscription.deleted")
    evt["data"]["object"]["id"] = "sub_foreign"
    evt["data"]["object"]["customer"] = "cus_someone_else"

    se.post_event(client, evt)

    gift.refresh_from_db()
    assert gift.stripe_subscription_id is None
    assert gift.status == Gift.Status.INCOMPLETE


def test_failed_renewal_marks_past_due_and_emails_once(client):
    gift, _ = checkout_gift()
    se.post_event(client, se.invoice_current(gift, invoice_id="in_first"))
    failed = se.invoice_current(gift, invoice_id="in_renewal", paid=False)
    se.post_event(client, failed)
    se.post_event(client, se.invoice_current(gift, invoice_id="in_renewal", paid=False))

    gift.refresh_from_db()
    assert gift.status == Gift.Status.PAST_DUE
    assert DonorEmail.objects.filter(kind=DonorEmail.Kind.PAST_DUE, gift=gift).count() == 1
    assert Donation.objects.get(stripe_invoice_id="in_renewal").status == Donation.Status.FAILED


def test_retried_renewal_that_succeeds_restores_active(client):
    gift, _ = checkout_gift()
    se.post_event(client, se.invoice_current(gift, invoice_id="in_first"))
    se.post_event(client, se.invoice_current(gift, invoice_id="in_renewal", paid=False))
    se.post_event(client, se.invoice_current(gift, invoice_id="in_renewal"))

    gift.refresh_from_db()
    assert gift.status == Gift.Status.ACTIVE
    assert Donation.objects.get(stripe_invoice_id="in_renewal").status == Donation.Status.PAID


def test_subscription_updated_follows_status_and_amount(client):
    gift = GiftFactory(status=Gift.Status.ACTIVE, amount=1000)
    se.post_event(
        client,
        se.subscription_current(
            gift, status="past_due", amount=1500, type_="customer.subscription.updated"
        ),
    )
    gift.refresh_from_db()
    assert gift.status == Gift.Status.PAST_DUE
    assert gift.amount == 1500


def test_subscription_deleted_cancels_and_emails_once(client):
    gift = GiftFactory(status=Gift.Status.PAST_DUE)
    deleted = se.subscription_current(
        gift, status="canceled", type_="customer.subscription.deleted"
    )
    se.post_event(client, deleted)
    se.post_event(
        client,
        se.subscription_current(gift, status="canceled", type_="customer.subscription.deleted"),
    )
    gift.refresh_from_db()
    assert gift.status == Gift.Status.CANCELLED
    assert DonorEmail.objects.filter(kind=DonorEmail.Kind.GIFT_ENDED).count() == 1


def test_late_subscription_created_never_revives_a_cancelled_gift(client):
    gift = GiftFactory(status=Gift.Status.ACTIVE)
    se.post_event(
        client, se.subscription_2017(gift, status="canceled", type_="customer.subscription.deleted")
    )
    se.post_event(
        client, se.subscription_2017(gift, status="active", type_="customer.subscription.created")
    )
    gift.refresh_from_db()
    assert gift.status == Gift.Status.CANCELLED


# --- Refunds and disputes ----------------------------------------------------------


def test_charge_refunded_marks_refunded_once(client):
    donation = DonationFactory(status=Donation.Status.PAID, stripe_charge_id="ch_1")
    se.post_event(client, se.charge_refunded_current(donation))
    se.post_event(client, se.charge_refunded_current(donation))

    donation.refresh_from_db()
    assert donation.status == Donation.Status.REFUNDED
    assert donation.refunded_amount == donation.amount


def test_partial_refund_records_amount_and_stays_paid(client):
    donation = DonationFactory(status=Donation.Status.PAID, amount=5000)
    se.post_event(client, se.charge_refunded_current(donation, amount_refunded=1000))
    donation.refresh_from_db()
    assert donation.status == Donation.Status.PAID
    assert donation.refunded_amount == 1000


def test_refund_before_payment_leaves_donation_refunded_without_receipt(client):
    donation = DonationFactory()
    se.post_event(client, se.charge_refunded_current(donation))
    se.post_event(client, se.payment_intent_succeeded_2017(donation))

    donation.refresh_from_db()
    assert donation.status == Donation.Status.REFUNDED
    assert receipts(donation) == 0


def test_dispute_flags_donation_once(client):
    donation = DonationFactory(status=Donation.Status.PAID, stripe_charge_id="ch_disputed")
    se.post_event(client, se.dispute_created_current(donation))
    first = Donation.objects.get().disputed_at
    se.post_event(client, se.dispute_created_current(donation))

    donation.refresh_from_db()
    assert first is not None
    assert donation.disputed_at == first
    assert donation.status == Donation.Status.PAID


def test_handler_failure_rolls_back_the_event_record_so_a_retry_applies(client, monkeypatch):
    from outlet.donations import webhooks

    donation = DonationFactory()
    evt = se.payment_intent_succeeded_2017(donation)

    def broken(obj):
        raise webhooks.stripe_gateway.StripeError("Stripe is down")

    monkeypatch.setitem(webhooks.HANDLERS, "payment_intent.succeeded", broken)
    assert se.post_event(client, evt).status_code == 503
    assert not StripeEvent.objects.exists()

    monkeypatch.undo()
    assert se.post_event(client, evt).status_code == 200
    assert Donation.objects.get().status == Donation.Status.PAID


def test_signature_older_than_five_minutes_is_refused(client):
    donation = DonationFactory()
    evt = se.payment_intent_succeeded_2017(donation)
    stale = se.sign(json.dumps(evt), timestamp=int(__import__("time").time()) - 600)
    assert se.post_event(client, evt, signature=stale).status_code == 400
    assert Donation.objects.get().status == Donation.Status.PENDING


def test_signed_body_that_is_not_an_event_is_refused(client):
    from django.urls import reverse

    response = client.post(
        reverse("donations:webhook"),
        data="[1, 2]",
        content_type="application/json",
        headers={"Stripe-Signature": se.sign("[1, 2]")},
    )
    assert response.status_code == 400


def test_renewal_for_a_not_yet_stored_subscription_waits_for_stripe_when_it_is_down(
    client, monkeypatch
):
    """The invoice raced the checkout request and Stripe cannot be asked which gift it is:
    answer 503 so Stripe retries, instead of acknowledging and losing the payment."""
    from outlet.donations import stripe_gateway

    gift = GiftFactory()
    evt = se.invoice_2017(gift, invoice_id="in_raced1")
    Gift.objects.filter(pk=gift.pk).update(stripe_subscription_id=None)

    def down(**kwargs):
        raise stripe_gateway.StripeError("Stripe is down")

    monkeypatch.setattr(stripe_gateway, "subscription_retrieve", down)

    assert se.post_event(client, evt).status_code == 503
    assert not StripeEvent.objects.exists()
