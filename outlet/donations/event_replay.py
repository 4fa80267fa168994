"""Replaying Stripe's event list after a restore, so no payment made after the dump is lost.

A restored database knows every event applied up to the dump's snapshot; Stripe kept
delivering to the old site after it. `stripe_events_replay` reads Stripe's event list from
a time (through stripe_gateway, the one door) and feeds each event, oldest first, through
the webhook's own apply path (`webhooks.event_apply`): events the dump already holds are
repeats and change nothing (the event id's unique constraint), the rest are applied exactly
as a delivery would be. So replaying from a little too early is harmless, and too late is
not: callers start before the dump's newest event (see outlet/core/backups/restore.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import stripe_gateway, webhooks


@dataclass
class ReplayReport:
    listed: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    @property
    def applied(self) -> int:
        return self.outcomes.get("applied", 0)

    @property
    def deferred(self) -> int:
        return self.outcomes.get("deferred", 0)

    def summary(self) -> str:
        counted = ", ".join(f"{name} {count}" for name, count in sorted(self.outcomes.items()))
        return f"{self.listed} events listed since the mark: {counted or 'nothing to do'}"


def stripe_events_replay(*, since: int) -> ReplayReport:
    """Apply every Stripe event created at or after `since` (epoch seconds), oldest first.
    A `deferred` outcome means Stripe could not be read while applying it: run again."""
    events = sorted(
        stripe_gateway.events_list(created_gte=since),
        key=lambda event: (int(event.get("created") or 0), str(event.get("id") or "")),
    )
    report = ReplayReport(listed=len(events))
    for event in events:
        _, _, outcome = webhooks.event_apply(event=event)
        report.outcomes[outcome] = report.outcomes.get(outcome, 0) + 1
    return report
