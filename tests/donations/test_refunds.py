"""Refunds as Stripe reports them: amounts that only grow while refunds stand, a refund
that fails (the money counts again, the editors hear, they can refund again), and the
receipt owed once whatever path records the payment."""

from __future__ import annotations

import pytest

from outlet.donations import services
from outlet.donations.models import Donation, DonorEmail
from outlet.donations.stripe_objects import payment_intent_facts
from tests.donations import stripe_events as se
from tests.factories import DonationFactory

pytestmark = pytest.mark.django_db


def receipts(donation) -> int:
    return DonorEmail.objects.filter(kind=DonorEmail.Kind.RECEIPT, donation=donation).count()


# --- A refunded amount never shrinks ------------------------------------------------


def test_smaller_charge_refunded_after_a_larger_one_changes_nothing(client):
    donation = DonationFactory(status=Donation.Status.PAID, amount=5000, stripe_charge_id="ch_1")
    larger = se.charge_refunded_current(donation, amount_refunded=3000)
    smaller = se.charge_refunded_current(donation, amount_refunded=1000)

    assert se.post_event(client, larger).status_code == 200
    assert se.post_event(client, smaller).status_code == 200

    donation.refresh_from_db()
    assert donation.refunded_amount == 3000
    assert donation.status == Donation.Status.PAID


def test_partial_charge_refunded_after_a_full_refund_changes_nothing(client):
    donation = DonationFactory(status=Donation.Status.PAID, amount=5000, stripe_charge_id="ch_1")
    se.post_event(client, se.charge_refunded_current(donation))
    refunded_at = Donation.objects.get().refunded_at

    se.post_event(client, se.charge_refunded_current(donation, amount_refunded=1000))

    donation.refresh_from_db()
    assert donation.status == Donation.Status.REFUNDED
    assert donation.refunded_amount == 5000
    assert donation.refunded_at == refunded_at


# --- The receipt's own send-once key ------------------------------------------------


@pytest.mark.parametrize("second_path", ["payment_record", "payment_record_if_matching"])
def test_receipt_is_owed_once_even_when_the_status_guard_lets_a_payment_through_twice(
    client, second_path
):
    """Both ways of recording a payment owe the receipt under one key: with the status
    guard out of the way (the row put back to pending), a second recording still owes no
    second receipt."""
    donation = DonationFactory(amount=2500)
    evt = se.payment_intent_succeeded_current(donation)
    se.post_event(client, evt)
    assert receipts(donation) == 1

    Donation.objects.filter(pk=donation.pk).update(status=Donation.Status.PENDING)
    if second_path == "payment_record":
        assert services.payment_record(donation_id=donation.pk)
    else:
        facts = payment_intent_facts(evt["data"]["object"])
        assert services.payment_record_if_matching(facts=facts)

    assert receipts(donation) == 1
