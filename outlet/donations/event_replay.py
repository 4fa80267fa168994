"""Replaying Stripe's event list after a restore, so no payment made after the dump is lost.

A restored database knows every event applied up to the dump's snapshot; Stripe kept
delivering to the old site after it. `stripe_events_replay` reads Stripe's event list from
a time (through stripe_gateway, the one door) and feeds each event, oldest first, through
the webhook's own apply path (`webhooks.event_apply`): events the dump already holds are
repeats and change nothing (the event id's unique constraint), the rest are applied exactly
as a delivery would be. So replaying from a little too early is harmless, and too late is
not: callers start before the dump's newest event (see outlet/core/backups/restore.py).

What a replay cannot do: pay a donation or gift the restored database never held. A reader
who began a checkout (or a monthly gift) on the old site after the dump paid for a row that
is not here. Such payments are listed as `unmatched` (PaymentIntent or invoice ids) for a
person to reconcile with Stripe's dashboard, never counted as applied, and never tied to
whichever donation now carries that id (the customer must match; and the restore moves
the sequences past the old site's ids).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q

from . import stripe_gateway, webhooks
from .models import Donation, StripeEvent
from .stripe_objects import invoice_facts

# Looked up in batches of this many ids (repeats skip the apply path entirely).
_SEEN_BATCH = 500


@dataclass
class ReplayReport:
    listed: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    # Payments of ours (a checkout's PaymentIntent, a gift's paid invoice) that no donation
    # here holds: money Stripe took that this database cannot record.
    unmatched: list[str] = field(default_factory=list)

    @property
    def applied(self) -> int:
        return self.outcomes.get("applied", 0)

    @property
    def deferred(self) -> int:
        return self.outcomes.get("deferred", 0)

    def summary(self) -> str:
        counted = ", ".join(f"{name} {count}" for name, count in sorted(self.outcomes.items()))
        summary = f"{self.listed} events listed since the mark: {counted or 'nothing to do'}"
        if self.unmatched:
            summary += f"; {len(self.unmatched)} payments no donation here holds"
        return summary


def stripe_events_replay(*, since: int) -> ReplayReport:
    """Apply every Stripe event created at or after `since` (epoch seconds), oldest first.
    A `deferred` outcome means Stripe could not be read while applying it: run again."""
    events = sorted(
        stripe_gateway.events_list(created_gte=since),
        key=lambda event: (int(event.get("created") or 0), str(event.get("id") or "")),
    )
    report = ReplayReport(listed=len(events))
    seen = _seen(events)
    outcomes: dict[str, str] = {}
    for event in events:
        event_id = str(event.get("id") or "")
        if event_id and event_id in seen:
            outcome = "repeat"  # applied before (in the dump, or by an earlier replay)
        else:
            _, _, outcome = webhooks.event_apply(event=event)
        outcomes[event_id] = outcome
    report.unmatched = _payments_unmatched(
        [event for event in events if outcomes.get(str(event.get("id") or "")) != "deferred"]
    )
    for event in events:
        outcome = outcomes[str(event.get("id") or "")]
        if outcome == "applied" and _payment_id(event) in report.unmatched:
            outcome = "unmatched"  # recorded, but no donation here holds the payment
        report.outcomes[outcome] = report.outcomes.get(outcome, 0) + 1
    return report


def _seen(events: list[dict[str, Any]]) -> set[str]:
    ids = [str(event.get("id") or "") for event in events if event.get("id")]
    seen: set[str] = set()
    for start in range(0, len(ids), _SEEN_BATCH):
        batch = ids[start : start + _SEEN_BATCH]
        seen.update(
            StripeEvent.objects.filter(event_id__in=batch).values_list("event_id", flat=True)
        )
    return seen


_INVOICE_PAID = {"invoice.paid", "invoice.payment_succeeded"}


def _payment_id(event: dict[str, Any]) -> str:
    """The payment a listed event says was made for a donation or gift of ours: a checkout's
    succeeded PaymentIntent (metadata naming a one-time donation), or a paid invoice of a
    subscription whose metadata names a gift. "" for anything else."""
    obj = (event.get("data") or {}).get("object") or {}
    if not obj.get("id"):
        return ""
    if event.get("type") == "payment_intent.succeeded":
        metadata = obj.get("metadata") or {}
        if metadata.get("donation_id") and not metadata.get("gift_id"):
            return str(obj["id"])
    elif event.get("type") in _INVOICE_PAID:
        facts = invoice_facts(obj)
        if facts.subscription_metadata.get("gift_id") and (
            facts.amount_paid > 0 or facts.credit_applied > 0
        ):
            return facts.id
    return ""


def _payments_unmatched(events: list[dict[str, Any]]) -> list[str]:
    """The payments of ours (`_payment_id`) that no donation holds once every event is
    applied: PaymentIntent ids and invoice ids."""
    wanted = {payment for event in events if (payment := _payment_id(event))}
    ordered = sorted(wanted)
    held: set[str] = set()
    for start in range(0, len(ordered), _SEEN_BATCH):
        batch = ordered[start : start + _SEEN_BATCH]
        rows = Donation.objects.filter(
            Q(stripe_payment_intent_id__in=batch) | Q(stripe_invoice_id__in=batch)
        ).values_list("stripe_payment_intent_id", "stripe_invoice_id")
        for payment_intent_id, invoice_id in rows:
            held.update(filter(None, (payment_intent_id, invoice_id)))
    return sorted(wanted - held)


def unmatched_message(payment_intents: list[str]) -> str:
    return (
        f"{len(payment_intents)} payments Stripe took are for donations this database does not "
        "hold (begun on the old site after the dump): record them by hand from Stripe's "
        "dashboard: " + ", ".join(payment_intents)
    )
