"""
Refunds and disputes: an editor asks Stripe for a refund; Stripe's charge.refunded and
charge.dispute.* events record them. A refund is recorded only when Stripe confirms it;
refunded amounts only grow while their refunds stand, and a refunded donation never
becomes paid again.

A refund can fail after Stripe accepted it (refund.failed, refund.updated or
charge.refund.updated to `failed`/`canceled`): the webhook reads the charge again, its
amount_refunded (which no longer holds the failed refund) replaces ours, the editors are
told once, and the donation can be refunded again (a new idempotency key per attempt).
The time of that read is kept (`refunds_read_at`), so a charge.refunded written before it
changes nothing: the per-refund ledger is `Refund`.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from outlet.core.logs.context import log_context_from

from .. import selectors, stripe_gateway
from ..models import Donation, Refund
from ..stripe_objects import ChargeFacts, DisputeFacts, RefundFacts, refund_facts
from .checkout import idempotency_key
from .donor_emails import SWEEP_AFTER
from .stripe_events import payment_record

logger = logging.getLogger(__name__)


def _donation_for_charge(payment_intent_id: str, charge_id: str) -> Donation | None:
    if payment_intent_id:
        donation = Donation.objects.filter(stripe_payment_intent_id=payment_intent_id).first()
        if donation is not None:
            return donation
    if charge_id:
        return Donation.objects.filter(stripe_charge_id=charge_id).first()
    return None


def charge_refund_apply(*, facts: ChargeFacts, event_created: int = 0) -> str:
    """Record a refund Stripe confirms. Works before the payment is recorded too: a
    refunded donation never becomes paid afterwards (see payment_record). An event older
    than the charge last read from Stripe (`refunds_read_at`) changes nothing."""
    with transaction.atomic():
        found = _donation_for_charge(facts.payment_intent_id, facts.id)
        if found is None:
            return "unknown charge"
        donation = Donation.objects.select_for_update().get(pk=found.pk)
        if event_created and event_created <= donation.refunds_read_at:
            return "older than the refunds read from Stripe"
        if facts.amount_refunded <= donation.refunded_amount:
            return "already applied"
        donation.refunded_amount = facts.amount_refunded
        fields = ["refunded_amount"]
        if facts.refunded or facts.amount_refunded >= donation.amount:
            donation.status = Donation.Status.REFUNDED
            donation.refunded_at = timezone.now()
            fields += ["status", "refunded_at"]
        if not donation.stripe_charge_id:
            donation.stripe_charge_id = facts.id
            fields.append("stripe_charge_id")
        donation.save(update_fields=fields)
        selectors.donation_overview_forget()
        return "refunded"


def refund_apply(*, facts: RefundFacts, charge: ChargeFacts | None, read_at: int) -> str:
    """Follow one refund's status (refund.updated, refund.failed, charge.refund.updated).
    A refund that failed or was canceled gives its money back: `charge` is the charge as
    read from Stripe after the failure, whose amount_refunded replaces ours (it may shrink
    here, and only here). Once per refund: its ledger row's status decides."""
    with transaction.atomic():
        found = _donation_for_charge(facts.payment_intent_id, facts.charge_id)
        if found is None:
            return "unknown charge"
        donation = Donation.objects.select_for_update().get(pk=found.pk)
        refund, _ = Refund.objects.select_for_update().get_or_create(
            stripe_refund_id=facts.id,
            defaults={
                "donation": donation,
                "amount": facts.amount,
                "currency": facts.currency or donation.currency,
            },
        )
        status = facts.status if facts.status in Refund.Status.values else refund.status
        if refund.gave_back or refund.status == status:
            return "already applied"  # failed and canceled are final
        refund.status = status
        refund.failure_reason = facts.failure_reason[:100]
        if not refund.gave_back:
            refund.save(update_fields=["status", "failure_reason"])
            return f"refund {status}"
        refund.failed_at = timezone.now()
        refund.save(update_fields=["status", "failure_reason", "failed_at"])
        if charge is not None:  # Stripe's current word, other refunds of the charge included
            donation.refunded_amount = charge.amount_refunded
            donation.refunds_read_at = max(read_at, donation.refunds_read_at)
        unrecorded = False
        if donation.status == Donation.Status.REFUNDED and (
            donation.refunded_amount < donation.amount
        ):
            # Refunded before its payment was recorded (Stripe keeps no order, and the
            # payment's event may have come and been ignored meanwhile): a refunded charge
            # was paid, so the payment is recorded now, with its date and its receipt.
            unrecorded = donation.paid_at is None
            donation.status = Donation.Status.PENDING if unrecorded else Donation.Status.PAID
            donation.refunded_at = None
        elif (
            donation.status == Donation.Status.PAID
            and charge is not None
            and (charge.refunded or donation.refunded_amount >= donation.amount)
        ):
            # The charge read holds another refund made meanwhile that refunds it all (its
            # charge.refunded is no news after this read and changes nothing).
            donation.status = Donation.Status.REFUNDED
            donation.refunded_at = timezone.now()
        donation.refund_requested_at = None  # the editors may refund it again
        donation.save(
            update_fields=[
                "refunded_amount",
                "refunds_read_at",
                "status",
                "refunded_at",
                "refund_requested_at",
            ]
        )
        if unrecorded:
            payment_record(
                donation_id=donation.pk,
                charge_id=charge.id if charge is not None else "",
                amount=charge.amount if charge is not None else None,
            )
        selectors.donation_overview_forget()
        _refund_failed_editors_notify_queue(refund_id=refund.pk)
    logger.warning("Refund %s of donation %s %s", facts.id, found.pk, status)
    return f"refund {status}"


def _refund_failed_editors_notify_queue(*, refund_id: int) -> None:
    from ..tasks import refund_failed_editors_notify_task

    # robust: a broker down at commit must not fail the webhook; the sweep queues it later.
    transaction.on_commit(lambda: refund_failed_editors_notify_task.delay(refund_id), robust=True)


def refund_failed_editors_notify(*, refund_id: int) -> bool:
    """Tell the editors who may refund that a refund failed and the money counts again.
    Once: the refund row is locked and marked while the message goes out."""
    from ..emails import refund_failed_message

    with transaction.atomic():
        refund = (
            Refund.objects.select_for_update(of=("self",))
            .select_related("donation", "donation__donor")
            .filter(pk=refund_id, failed_at__isnull=False, editors_notified_at__isnull=True)
            .first()
        )
        if refund is None:
            return False
        recipients = selectors.editors_who_refund_emails()
        if recipients:
            refund_failed_message(refund=refund, recipients=recipients).send()
        else:
            logger.warning("Refund %s failed and no editor can be told", refund.stripe_refund_id)
        Refund.objects.filter(pk=refund.pk).update(editors_notified_at=timezone.now())
    return True


# Stripe's dispute statuses that leave the money with us (a won dispute, or an inquiry
# closed without a chargeback); any other status holds or has lost it.
_DISPUTE_RETURNED = {"won", "warning_closed"}


def dispute_apply(*, facts: DisputeFacts) -> str:
    """An opened dispute: the amount is held (off the totals) and the editors hear once."""
    with transaction.atomic():
        found = _donation_for_charge(facts.payment_intent_id, facts.charge_id)
        if found is None:
            return "unknown charge"
        donation = Donation.objects.select_for_update().get(pk=found.pk)
        if donation.disputed_at is not None:
            return "already applied"
        donation.disputed_at = timezone.now()
        donation.dispute_status = facts.status[:30]
        donation.disputed_amount = min(facts.amount or donation.amount, donation.amount)
        if facts.status in _DISPUTE_RETURNED:
            donation.disputed_amount = 0
        donation.save(update_fields=["disputed_at", "dispute_status", "disputed_amount"])
        selectors.donation_overview_forget()
        _dispute_editors_notify_queue(donation_id=donation.pk)
    logger.warning("Donation %s is disputed (%s)", found.pk, facts.reason)
    return "flagged"


def dispute_close_apply(*, facts: DisputeFacts) -> str:
    """charge.dispute.closed: won, the amount counts again; lost, it stays off the totals.
    Applies whether or not the opening event came first."""
    with transaction.atomic():
        found = _donation_for_charge(facts.payment_intent_id, facts.charge_id)
        if found is None:
            return "unknown charge"
        donation = Donation.objects.select_for_update().get(pk=found.pk)
        returned = facts.status in _DISPUTE_RETURNED
        amount = 0 if returned else min(facts.amount or donation.amount, donation.amount)
        if donation.dispute_status == facts.status and donation.disputed_amount == amount:
            return "already applied"
        donation.dispute_status = facts.status[:30]
        donation.disputed_amount = amount
        first_word = donation.disputed_at is None
        donation.disputed_at = donation.disputed_at or timezone.now()
        donation.save(update_fields=["dispute_status", "disputed_amount", "disputed_at"])
        selectors.donation_overview_forget()
        if first_word:
            # The opening event comes later (or never) and will find the dispute applied:
            # the editors are told now, once, as for an opened dispute.
            _dispute_editors_notify_queue(donation_id=donation.pk)
    return "dispute won" if returned else "dispute lost"


def _dispute_editors_notify_queue(*, donation_id: int) -> None:
    from ..tasks import dispute_editors_notify_task

    # robust: a broker down at commit must not fail the webhook; the sweep queues it later.
    transaction.on_commit(lambda: dispute_editors_notify_task.delay(donation_id), robust=True)


@log_context_from
def dispute_editors_notify(*, donation_id: int) -> bool:
    """Tell the editors who may refund (the refund permission) that a donation is
    disputed. Once: the row is locked and marked while the message goes out."""
    from ..emails import dispute_opened_message

    with transaction.atomic():
        donation = (
            Donation.objects.select_for_update(of=("self",))
            .select_related("donor")
            .filter(pk=donation_id, dispute_notified_at__isnull=True)
            .first()
        )
        if donation is None:
            return False
        recipients = selectors.editors_who_refund_emails()
        if recipients:
            dispute_opened_message(donation=donation, recipients=recipients).send()
        else:
            logger.warning("Donation %s is disputed and no editor can be told", donation.pk)
        Donation.objects.filter(pk=donation.pk).update(dispute_notified_at=timezone.now())
    return True


def dispute_notifications_sweep(*, older_than: timedelta = SWEEP_AFTER, limit: int = 100) -> int:
    """Queue again the editors' alert of every dispute, and of every failed refund,
    recorded but never told (its task was not queued, or was lost). Telling stays once:
    the task locks the row and skips a told one. Returns how many were queued; stops at
    the first broker error."""
    from ..tasks import dispute_editors_notify_task, refund_failed_editors_notify_task

    since = timezone.now() - older_than
    untold = [
        (dispute_editors_notify_task, pk)
        for pk in Donation.objects.filter(disputed_at__lt=since, dispute_notified_at__isnull=True)
        .order_by("disputed_at")
        .values_list("pk", flat=True)[:limit]
    ] + [
        (refund_failed_editors_notify_task, pk)
        for pk in Refund.objects.filter(failed_at__lt=since, editors_notified_at__isnull=True)
        .order_by("failed_at")
        .values_list("pk", flat=True)[:limit]
    ]
    queued = 0
    for task, pk in untold:
        try:
            task.delay(pk)
        except Exception:  # the broker is still down: try again at the next sweep
            logger.warning("Could not queue the editors' alert %s(%s)", task.name, pk)
            break
        queued += 1
    return queued


def donation_refund(*, donation: Donation) -> None:
    """Ask Stripe to refund a paid donation. The donation is marked refunded when
    Stripe's `charge.refunded` webhook confirms it, not now."""
    if donation.status != Donation.Status.PAID or not donation.stripe_payment_intent_id:
        raise ValidationError(f"Donation #{donation.pk} is not a paid card payment.")
    # Claim the refund first, so two editors (or a double click) ask Stripe once.
    claimed = Donation.objects.filter(
        pk=donation.pk, status=Donation.Status.PAID, refund_requested_at__isnull=True
    ).update(refund_requested_at=timezone.now())
    if not claimed:
        return
    # A refund that failed keeps its idempotency key at Stripe for a day: asking again
    # with it would only hand back the failed one.
    given_back = Refund.objects.filter(
        donation=donation, status__in=[Refund.Status.FAILED, Refund.Status.CANCELED]
    ).count()
    purpose = "refund" if not given_back else f"refund-after-{given_back}-failed"
    try:
        refund = stripe_gateway.refund_create(
            payment_intent_id=donation.stripe_payment_intent_id,
            idempotency_key=idempotency_key(donation, purpose),
        )
    except stripe_gateway.StripeError:
        Donation.objects.filter(pk=donation.pk).update(refund_requested_at=None)
        raise
    if not (refund or {}).get("id"):
        return  # the refund's own events fill the ledger in
    facts = refund_facts(refund)
    Refund.objects.get_or_create(
        stripe_refund_id=facts.id,
        defaults={
            "donation": donation,
            "amount": facts.amount or donation.amount,
            "currency": facts.currency or donation.currency,
            "status": facts.status if facts.status in Refund.Status.values else "pending",
        },
    )
