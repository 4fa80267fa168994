"""Replaying Stripe's event list after a restore, so no payment made after the dump is lost.

A restored database knows every event applied up to the dump's snapshot; Stripe kept
delivering to the old site after it. `stripe_events_replay` reads Stripe's event list from
a time (through stripe_gateway, the one door) and feeds each event, oldest first, through
the webhook's own apply path (`webhooks.event_apply`): events the dump already holds are
repeats and change nothing (the event id's unique constraint), the rest are applied exactly
as a delivery would be. So replaying from a little too early is harmless, and too late is
not: callers start before the dump's newest event (see outlet/core/backups/restore.py).

What a replay cannot do: pay a donation the restored database never held. A reader who
began a checkout on the old site after the dump paid for a donation row that is not here
(and whose id the restored sequence hands out again). Such payments are listed as
`unmatched` (their PaymentIntent ids) for a person to reconcile with Stripe's dashboard,
never counted as applied, and never tied to whichever donation now carries that id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import stripe_gateway, webhooks
from .models import Donation, StripeEvent

# Looked up in batches of this many ids (repeats skip the apply path entirely).
_SEEN_BATCH = 500


@dataclass
class ReplayReport:
    listed: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    # Succeeded one-time PaymentIntents (the checkout's, naming a donation) that no
    # donation here holds: money Stripe took that this database cannot record.
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
        if outcome == "applied" and _payment_intent_id(event) in report.unmatched:
            outcome = "unmatched"  # recorded, but no donation here holds the payment
        report.outcomes[outcome] = report.outcomes.get(outcome, 0) + 1
    return report


def _payment_intent_id(event: dict[str, Any]) -> str:
    if event.get("type") != "payment_intent.succeeded":
        return ""
    return str(((event.get("data") or {}).get("object") or {}).get("id") or "")


def _seen(events: list[dict[str, Any]]) -> set[str]:
    ids = [str(event.get("id") or "") for event in events if event.get("id")]
    seen: set[str] = set()
    for start in range(0, len(ids), _SEEN_BATCH):
        batch = ids[start : start + _SEEN_BATCH]
        seen.update(
            StripeEvent.objects.filter(event_id__in=batch).values_list("event_id", flat=True)
        )
    return seen


def _payments_unmatched(events: list[dict[str, Any]]) -> list[str]:
    """The checkout's succeeded PaymentIntents (metadata naming a one-time donation) that
    no donation holds once every event is applied."""
    wanted: list[str] = []
    for event in events:
        if event.get("type") != "payment_intent.succeeded":
            continue
        obj = (event.get("data") or {}).get("object") or {}
        metadata = obj.get("metadata") or {}
        if obj.get("id") and metadata.get("donation_id") and not metadata.get("gift_id"):
            wanted.append(str(obj["id"]))
    held: set[str] = set()
    for start in range(0, len(wanted), _SEEN_BATCH):
        batch = wanted[start : start + _SEEN_BATCH]
        held.update(
            Donation.objects.filter(stripe_payment_intent_id__in=batch).values_list(
                "stripe_payment_intent_id", flat=True
            )
        )
    return sorted(set(wanted) - held)


def unmatched_message(payment_intents: list[str]) -> str:
    return (
        f"{len(payment_intents)} payments Stripe took are for donations this database does not "
        "hold (begun on the old site after the dump): record them by hand from Stripe's "
        "dashboard: " + ", ".join(payment_intents)
    )
