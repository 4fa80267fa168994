"""
Applying what Stripe says: payments, invoices and subscriptions.

Every function here is idempotent and order-independent: it locks the row it changes and
moves it only along allowed status transitions, so a repeated or reordered webhook, or a
webhook racing the checkout request, changes nothing twice. None calls Stripe: the
webhook fetches what it needs first (see webhooks.py), so no lock is held across a
network call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from outlet.core.logs.context import log_context, log_context_from

from .. import selectors
from ..models import Donation, DonorEmail, Gift
from ..stripe_objects import (
    InvoiceFacts,
    PaymentIntentFacts,
    SubscriptionFacts,
    payment_intent_facts,
)
from .donor_emails import donor_email_queue, receipt_dedupe_key

logger = logging.getLogger(__name__)

DECLINE_MESSAGE = gettext_noop(
    "Your card was declined. Please try another card; nothing was charged."
)


@log_context_from
def donation_fail(*, donation: Donation, message: str) -> None:
    Donation.objects.filter(pk=donation.pk, status=Donation.Status.PENDING).update(
        status=Donation.Status.FAILED, failure_message=message[:500]
    )


@log_context_from
def payment_record(
    *,
    donation_id: int,
    charge_id: str = "",
    amount: int | None = None,
    donor_id: int | None = None,
    credit_amount: int = 0,
) -> bool:
    """Mark a donation paid and owe its receipt. True when this call recorded it.

    Only a pending (or failed, then retried) donation becomes paid, or one expired as an
    abandoned checkout that Stripe says was paid after all (money taken is recorded): a
    repeat, or a payment reported after its refund, changes nothing. The status test and
    the change are one conditional UPDATE, so two concurrent deliveries cannot both win.

    `credit_amount` is what the donor's Stripe credit balance paid (a renewal): `amount`
    is then what the card paid, possibly 0, and no card receipt is owed for nothing
    charged (nor card details kept for it)."""
    changes: dict[str, Any] = {
        "status": Donation.Status.PAID,
        "paid_at": timezone.now(),
        "failure_message": "",
    }
    if charge_id:
        changes["stripe_charge_id"] = charge_id
    if amount:
        changes["amount"] = amount  # what Stripe charged is what was given
    if credit_amount:
        changes.update(amount=amount or 0, credit_amount=credit_amount)
        if not amount:
            changes.update(card_brand="", card_last4="")
    # No savepoint: nothing here is caught and retried inside the transaction.
    with transaction.atomic(savepoint=False):
        updated = Donation.objects.filter(
            pk=donation_id,
            status__in=[
                Donation.Status.PENDING,
                Donation.Status.FAILED,
                Donation.Status.ABANDONED,
            ],
        ).update(**changes)
        if not updated:
            return False
        selectors.donation_overview_forget()
        if credit_amount and not amount:
            return True  # nothing was charged: no receipt for money not taken
        if donor_id is None:
            donor_id = Donation.objects.values_list("donor_id", flat=True).get(pk=donation_id)
        donor_email_queue(
            kind=DonorEmail.Kind.RECEIPT,
            donor_id=donor_id,
            donation_id=donation_id,
            dedupe_key=receipt_dedupe_key(donation_id),
        )
        _opt_in_forward_once_paid(donation_id=donation_id)
    logger.info("donation %s paid", donation_id)
    return True


def _opt_in_forward_once_paid(*, donation_id: int) -> None:
    """The checkout's newsletter opt-in, forwarded now that the donation is paid (once:
    only the call that recorded the payment gets here)."""
    from .checkout import NEWSLETTER_CONSENT, newsletter_opt_in_forward

    donation = Donation.objects.select_related("donor").filter(pk=donation_id).first()
    if donation is not None and donation.newsletter_opt_in:
        newsletter_opt_in_forward(donation=donation, consent_text=NEWSLETTER_CONSENT)


def payment_record_if_matching(*, facts: PaymentIntentFacts) -> bool:
    """The webhook's fast path for the common case: one pending one-time donation holds
    this PaymentIntent with the same amount and currency. One conditional
    UPDATE … RETURNING marks it paid (no read first, nothing for another delivery to
    race), then the receipt is owed. False means "not that simple" (unknown, already
    paid, amounts differ, a gift's payment): the caller takes the general path."""
    if facts.status != "succeeded":
        return False
    table = connection.ops.quote_name(Donation._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET status = %s, paid_at = %s, failure_message = '', "  # noqa: S608 (table name from model meta)
            "stripe_charge_id = %s WHERE stripe_payment_intent_id = %s AND gift_id IS NULL "
            "AND status IN (%s, %s) AND amount = %s AND currency = %s "
            "RETURNING id, donor_id, newsletter_opt_in",
            [
                Donation.Status.PAID,
                timezone.now(),
                facts.charge_id,
                facts.id,
                Donation.Status.PENDING,
                Donation.Status.FAILED,
                facts.amount,
                facts.currency,
            ],
        )
        row = cursor.fetchone()
    if row is None:
        return False
    donation_id, donor_id, opted_in = row
    with log_context(donation_id=donation_id):
        donor_email_queue(
            kind=DonorEmail.Kind.RECEIPT,
            donor_id=donor_id,
            donation_id=donation_id,
            dedupe_key=receipt_dedupe_key(donation_id),
        )
        if opted_in:
            _opt_in_forward_once_paid(donation_id=donation_id)
        logger.info("donation %s paid", donation_id)
    return True


@dataclass(frozen=True)
class PaymentTarget:
    """The one-time donation a PaymentIntent pays, as recorded at checkout."""

    id: int
    amount: int
    currency: str
    donor_id: int


def donation_for_payment_intent(facts: PaymentIntentFacts) -> PaymentTarget | None:
    """Our one-time donation for this PaymentIntent: by its id, else by the donation id
    in its metadata when the webhook beat the checkout request to storing the id.
    None for a PaymentIntent of a subscription (its invoice carries it) or of an earlier
    attempt that another card has replaced."""
    row = (
        Donation.objects.filter(stripe_payment_intent_id=facts.id)
        .values_list("id", "amount", "currency", "donor_id", "gift_id")
        .first()
    )
    if row is not None:
        return PaymentTarget(*row[:4]) if row[4] is None else None
    candidate = facts.metadata.get("donation_id", "")
    if not candidate.isdigit():
        return None
    unlinked = Donation.objects.filter(
        pk=int(candidate), gift__isnull=True, stripe_payment_intent_id__isnull=True
    )
    if facts.customer_id:
        # The checkout makes its PaymentIntent for the donation's own customer. Another
        # customer's means the id was handed out again (a restored database's sequence
        # reissues the ids the old site gave after the dump): not this donation's payment.
        unlinked = unlinked.filter(stripe_customer_id=facts.customer_id)
    linked = unlinked.update(stripe_payment_intent_id=facts.id)
    if not linked:
        return None
    donation = Donation.objects.values_list("id", "amount", "currency", "donor_id").get(
        pk=int(candidate)
    )
    return PaymentTarget(*donation)


def payment_intent_apply(*, facts: PaymentIntentFacts, target: PaymentTarget | None = None) -> str:
    """Apply a PaymentIntent's state to its donation. Returns what happened, for logs."""
    target = target or donation_for_payment_intent(facts)
    if target is None:
        return "not a one-time donation"
    if facts.status == "succeeded":
        recorded = payment_record(
            donation_id=target.id,
            charge_id=facts.charge_id,
            amount=facts.amount,
            donor_id=target.donor_id,
        )
        return "paid" if recorded else "already applied"
    if facts.status == "requires_payment_method" and facts.failure_message:
        Donation.objects.filter(pk=target.id, status=Donation.Status.PENDING).update(
            status=Donation.Status.FAILED, failure_message=DECLINE_MESSAGE
        )
        return "failed"
    return "no change"


def _gift_for_subscription(
    subscription_id: str, metadata: dict[str, str], customer_id: str
) -> Gift | None:
    if subscription_id:
        gift = Gift.objects.filter(stripe_subscription_id=subscription_id).first()
        if gift is not None:
            return gift
    # Not yet stored (the webhook raced the checkout request): the metadata names the gift,
    # if the customer is the gift's. The webhook fetched the subscription's metadata first
    # when the invoice lacked it.
    gift = selectors.gift_starting_here(metadata=metadata, customer_id=customer_id)
    if gift is not None and subscription_id and not gift.stripe_subscription_id:
        Gift.objects.filter(pk=gift.pk, stripe_subscription_id__isnull=True).update(
            stripe_subscription_id=subscription_id
        )
    return gift


def _donation_payment_link(*, donation: Donation, facts: InvoiceFacts) -> None:
    """Tie an invoice's donation to its PaymentIntent and charge (read from the invoice's
    payments), so a refund or dispute of it finds it and an editor can refund it. A
    PaymentIntent already held by another donation is left with that one."""
    changes: dict[str, Any] = {}
    # A paid invoice's PaymentIntent replaces one of an earlier failed attempt (a new card
    # can bring a new PaymentIntent): a refund must name the one that was paid.
    replaces_failed = (
        facts.status == "paid"
        and donation.status != Donation.Status.PAID
        and facts.payment_intent_id != donation.stripe_payment_intent_id
    )
    if facts.payment_intent_id and (not donation.stripe_payment_intent_id or replaces_failed):
        taken = Donation.objects.filter(stripe_payment_intent_id=facts.payment_intent_id).exists()
        if not taken:
            changes["stripe_payment_intent_id"] = facts.payment_intent_id
    if facts.charge_id and not donation.stripe_charge_id:
        changes["stripe_charge_id"] = facts.charge_id
    if changes:
        Donation.objects.filter(pk=donation.pk).update(**changes)
        for name, value in changes.items():
            setattr(donation, name, value)


def _needs_authentication(facts: InvoiceFacts) -> bool:
    """The invoice's PaymentIntent waits for the donor's bank (3-D Secure)."""
    if facts.payment_intent is None:
        return False
    return payment_intent_facts(facts.payment_intent).status == "requires_action"


def invoice_apply(*, facts: InvoiceFacts, paid: bool | None, action_required: bool = False) -> str:
    """Apply a subscription invoice: paid (invoice.paid / invoice.payment_succeeded, the
    same fact), failed (invoice.payment_failed), or None: still open, only tie it to its
    donation and payment (a first invoice waiting for the browser's confirmation). The
    first invoice claims the donation made at checkout; later ones are renewals and get a
    donation row of their own.

    `action_required` (invoice.payment_action_required), or a payment_failed whose
    PaymentIntent waits for the donor's bank: nothing failed, the donation stays pending,
    and a running gift's donor gets one email with a link to confirm (the invoice's hosted
    page); a first payment is confirmed in the browser at checkout, so no email."""
    if not facts.subscription_id and not facts.subscription_metadata:
        return "not a gift invoice"
    if paid and not facts.amount_paid and not facts.credit_applied:
        # Paid with nothing taken (a 100 % coupon): no money, so no payment to record.
        return "nothing paid"
    gift = _gift_for_subscription(
        facts.subscription_id, facts.subscription_metadata, facts.customer_id
    )
    if gift is None:
        return "unknown subscription"
    with transaction.atomic():
        gift = Gift.objects.select_for_update(of=("self",)).select_related("donor").get(pk=gift.pk)
        donation = Donation.objects.filter(stripe_invoice_id=facts.id).first()
        if donation is None:
            # Only the checkout makes a gift's donation without an invoice id.
            donation = (
                Donation.objects.filter(gift=gift, stripe_invoice_id__isnull=True)
                .order_by("created_at")
                .first()
            )
            if donation is not None:
                donation.stripe_invoice_id = facts.id
                donation.save(update_fields=["stripe_invoice_id"])
            else:
                donation = Donation.objects.create(
                    donor=gift.donor,
                    gift=gift,
                    frequency=gift.interval,
                    amount=facts.amount_paid or facts.amount_due or gift.amount,
                    currency=facts.currency or gift.currency,
                    stripe_invoice_id=facts.id,
                    stripe_customer_id=gift.stripe_customer_id,
                    card_brand=gift.card_brand,
                    card_last4=gift.card_last4,
                    campaign=gift.campaign,
                    source=gift.source,
                    utm=gift.utm,
                    public_credit=gift.public_credit,
                    public_name=gift.public_name,
                )
        _donation_payment_link(donation=donation, facts=facts)
        if paid is None and not action_required:
            return "linked"
        if paid:
            recorded = payment_record(
                donation_id=donation.pk,
                charge_id=facts.charge_id,
                # With credit applied, amount_paid is what the card paid (maybe 0).
                amount=facts.amount_paid if facts.credit_applied else None,
                credit_amount=facts.credit_applied,
            )
            if gift.status in (Gift.Status.INCOMPLETE, Gift.Status.PAST_DUE):
                gift.status = Gift.Status.ACTIVE
                gift.save(update_fields=["status"])
            return "paid" if recorded else "already applied"
        if donation.status in (Donation.Status.PAID, Donation.Status.REFUNDED):
            # A late payment_failed for an invoice since paid (a retry succeeded first):
            # the payment stands and the gift is not past due because of it.
            return "already paid"
        was_running = gift.status in (Gift.Status.ACTIVE, Gift.Status.PAST_DUE)
        if action_required or _needs_authentication(facts):
            if not was_running:
                return "confirmed in the browser"
            donor_email_queue(
                kind=DonorEmail.Kind.PAYMENT_ACTION_REQUIRED,
                donor_id=gift.donor_id,
                gift_id=gift.pk,
                donation_id=donation.pk,
                dedupe_key=f"action-required:{facts.id}",
                action_url=facts.hosted_invoice_url,
            )
            return "confirmation asked"
        donation_fail(donation=donation, message=gettext_noop("The renewal payment failed."))
        if gift.status == Gift.Status.ACTIVE:
            gift.status = Gift.Status.PAST_DUE
            gift.save(update_fields=["status"])
        if was_running:
            donor_email_queue(
                kind=DonorEmail.Kind.PAST_DUE,
                donor_id=gift.donor_id,
                gift_id=gift.pk,
                donation_id=donation.pk,
                dedupe_key=f"past-due:{facts.id}",
            )
        return "renewal failed"


SUBSCRIPTION_STATUS = {
    "incomplete": Gift.Status.INCOMPLETE,
    "active": Gift.Status.ACTIVE,
    "trialing": Gift.Status.ACTIVE,
    "past_due": Gift.Status.PAST_DUE,
    "unpaid": Gift.Status.PAST_DUE,
    "canceled": Gift.Status.CANCELLED,
    "incomplete_expired": Gift.Status.CANCELLED,
}


# Sent as the cancellation comment when a donor cancels on our site, so Stripe's own
# customer.subscription.deleted, should it arrive before our record of the cancellation,
# still tells the donor's cancellation from staff's.
DONOR_CANCELLATION_COMMENT = "Cancelled by the donor on the site."


def _end_reason(facts: SubscriptionFacts, gift: Gift) -> str:
    """Why a subscription ended, from Stripe's cancellation_details."""
    if facts.cancellation_comment == DONOR_CANCELLATION_COMMENT:
        return Gift.EndReason.DONOR
    if facts.cancellation_reason == "payment_failed":
        return Gift.EndReason.PAYMENT_FAILED
    if facts.cancellation_reason == "cancellation_requested":
        return Gift.EndReason.STAFF
    if not facts.cancellation_reason and gift.status == Gift.Status.PAST_DUE:
        # localstripe and older API versions say no reason; a past-due gift that ends has
        # run out of payment retries.
        return Gift.EndReason.PAYMENT_FAILED
    return Gift.EndReason.OTHER


def subscription_apply(*, facts: SubscriptionFacts, event_created: int | None = None) -> str:
    """Follow the subscription's status and amount. Cancelled is final: a late "created"
    or "updated" event never revives a gift Stripe has ended. An event older than the
    newest one applied (`event_created` against the gift's `stripe_event_at`) changes
    nothing, so events delivered out of order cannot downgrade a gift or undo an amount
    change; None means the facts were just read from Stripe and are current."""
    gift = _gift_for_subscription(facts.id, facts.metadata, facts.customer_id)
    if gift is None:
        return "unknown subscription"
    target = SUBSCRIPTION_STATUS.get(facts.status)
    if target == Gift.Status.CANCELLED:
        ended = gift_end(gift=gift, reason=_end_reason(facts, gift))
        return "cancelled" if ended else "already applied"
    with transaction.atomic():
        gift = Gift.objects.select_for_update().get(pk=gift.pk)
        if gift.status == Gift.Status.CANCELLED:
            return "already cancelled"
        if event_created is not None and event_created < gift.stripe_event_at:
            return "older than the state applied"
        fields = []
        if event_created is not None and event_created > gift.stripe_event_at:
            gift.stripe_event_at = event_created
            fields.append("stripe_event_at")
        # A subscription is incomplete only until its first payment: once a gift has run,
        # a late "created" (incomplete) never takes it back there.
        if target is not None and gift.status != target and target != Gift.Status.INCOMPLETE:
            gift.status = target
            fields.append("status")
        if facts.amount and facts.amount != gift.amount:
            gift.amount = facts.amount
            fields.append("amount")
        if fields:
            gift.save(update_fields=fields)
        return "updated" if set(fields) - {"stripe_event_at"} else "no change"


def gift_end(*, gift: Gift, reason: str) -> bool:
    """Mark a gift cancelled for `reason` (a Gift.EndReason); the donor hears once, with
    the true reason: their own cancellation, staff's, or payments that failed (a donor's
    own cancellation and Stripe's later `customer.subscription.deleted` share one email).
    A gift that never started (its first payment failed) ends without an email."""
    with transaction.atomic():
        gift = Gift.objects.select_for_update(of=("self",)).select_related("donor").get(pk=gift.pk)
        if gift.status == Gift.Status.CANCELLED:
            return False
        was_running = gift.status in (Gift.Status.ACTIVE, Gift.Status.PAST_DUE)
        gift.status = Gift.Status.CANCELLED
        gift.cancelled_at = timezone.now()
        gift.end_reason = reason
        gift.save(update_fields=["status", "cancelled_at", "end_reason"])
        if was_running:
            by_donor = reason == Gift.EndReason.DONOR
            donor_email_queue(
                kind=DonorEmail.Kind.GIFT_CANCELLED if by_donor else DonorEmail.Kind.GIFT_ENDED,
                donor_id=gift.donor_id,
                gift_id=gift.pk,
                dedupe_key=f"gift-end:{gift.pk}",
            )
    return True
