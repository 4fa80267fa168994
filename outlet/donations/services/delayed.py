"""
Payments that settle days later: bank debits (SEPA Direct Debit, ACH, Bacs).

Stripe says `processing` at once and `succeeded` or `payment_failed` days later. The
donation follows, by conditional UPDATEs that make repeats and late events harmless:

- pending (or an expired checkout Stripe took money for) → processing. Paid, failed and
  refunded never go back to processing: a repeated or late `processing` changes nothing.
- processing → paid is `payment_record` (stripe_events.py), which owes the receipt then:
  nothing is receipted before the money is there.
- processing → failed: the reader left the page believing the gift was on its way, so
  they get one short note (DonorEmail.Kind.PAYMENT_FAILED, once per donation) with a
  link to give again. A card declined while the reader watches gets no note: the page
  said so.

Nothing here calls Stripe (the webhook reads what it needs first).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils.translation import gettext_noop

from ..models import Donation, DonorEmail
from ..stripe_objects import PaymentIntentFacts
from .donor_emails import donor_email_queue

# Stored on the donation as an English msgid, translated where shown (as DECLINE_MESSAGE).
BANK_FAILURE_MESSAGE = gettext_noop("Your bank did not complete the payment; nothing was taken.")


def _payment_details(facts: PaymentIntentFacts) -> dict[str, Any]:
    """What the charge says about how it was paid, when it came with the PaymentIntent."""
    details: dict[str, Any] = {}
    if facts.payment_method_type:
        details["payment_method_type"] = facts.payment_method_type[:40]
    if facts.mandate_reference:
        details["mandate_reference"] = facts.mandate_reference[:255]
    if facts.account_last4 and facts.payment_method_type != "card":
        details["card_last4"] = facts.account_last4[-4:]
    return details


def payment_processing_record(*, facts: PaymentIntentFacts, donation_id: int | None = None) -> str:
    """A bank debit is on its way: its donation (the one-time gift `donation_id`, else
    whichever donation holds the PaymentIntent, a recurring gift's first payment or a
    renewal) becomes processing, keeping how it was paid (the mandate of a SEPA debit).
    Returns what happened, for logs."""
    if donation_id is None:
        donation_id = (
            Donation.objects.filter(stripe_payment_intent_id=facts.id)
            .values_list("pk", flat=True)
            .first()
        )
        if donation_id is None:
            return "unknown payment"
    details = _payment_details(facts)
    moved = Donation.objects.filter(
        pk=donation_id, status__in=[Donation.Status.PENDING, Donation.Status.ABANDONED]
    ).update(status=Donation.Status.PROCESSING, failure_message="", **details)
    if moved:
        return "processing"
    if details:
        # Already moved on (paid first, or the return page applied it): the payment's
        # details are still facts worth keeping for its receipt.
        Donation.objects.filter(pk=donation_id).update(**details)
    return "no change"


def payment_failure_after_processing(*, donation_id: int) -> bool:
    """A bank debit that was processing failed: the donation fails and the reader gets the
    note, once. False (nothing changed) for a donation that was not processing."""
    with transaction.atomic(savepoint=False):
        failed = Donation.objects.filter(pk=donation_id, status=Donation.Status.PROCESSING).update(
            status=Donation.Status.FAILED, failure_message=BANK_FAILURE_MESSAGE
        )
        if not failed:
            return False
        payment_failure_note_queue(donation_id=donation_id)
    return True


def payment_failure_note_queue(*, donation_id: int) -> None:
    """Owe the reader the note that their gift did not go through (once per donation)."""
    donor_id = Donation.objects.values_list("donor_id", flat=True).get(pk=donation_id)
    donor_email_queue(
        kind=DonorEmail.Kind.PAYMENT_FAILED,
        donor_id=donor_id,
        donation_id=donation_id,
        dedupe_key=f"payment-failed:{donation_id}",
    )
