"""The bounce-rate breaker: a relay that refuses every mailbox must not unsubscribe the list.

Contract: every hard bounce the engine sees (5.1.x at RCPT, a permanent RCPT refusal
cleared by a later acceptance, an ESP's "rejected" or "invalid") goes through
`BounceWindow.hard_bounce`: the row is failed at once, but its address is only held
(a `HeldBounce`), not suppressed. The issue counts, in the database, the messages the
servers judged (accepted or hard-bounced) and the hard bounces of its current window
(`Issue.bounce_window_judged`, `bounce_window_hard`): lanes add to them with atomic
increments, each hard bounce at once (the messages accepted before it added and judged
first, so a window never closes on a refusal among hundreds accepted before it) and the
accepted messages at the end of the batch, so concurrent workers never lose a count.

Once a window holds NEWSLETTER_BOUNCE_BREAKER_SAMPLE judgements it is judged under the
issue's row lock (one lane judges it; the others find it started afresh):

- at or below NEWSLETTER_BOUNCE_BREAKER_RATE, the window's bounces were real: their
  addresses are suppressed and the window starts again;
- above it (and at least MIN_BOUNCES), the breaker trips: the issue pauses for the
  editor with the figures, the window's bounces wait for the editor, and so does every
  later hard bounce of the issue until the editor resumes. The editor confirms them
  (`issue_held_bounces_confirm`: suppressed) or lifts them (`issue_held_bounces_lift`:
  sent again, the attempt not counted).

When an issue's last row is done (`issue_sending_check`), the window left is judged
whatever its size: against its own count for an issue that is one window, against a
full window for a longer one (a short tail of a long send is not a sample).

Through our own relay, a hard bounce also comes back by mail after the relay accepted
the copy (bounces/intake.py): `issue_mail_bounce_hold` counts those against a window of
the copies the relay accepted (the NEWSLETTER_BOUNCE_BREAKER_SAMPLE copies up to the one
that bounced). While they stay within the rate (or under MIN_BOUNCES) each is suppressed
as it comes; past it the breaker trips as above, and this and every later one of the
issue's mailed bounces wait for the editor. So a relay whose upstream starts refusing
everyone costs fewer than MIN_BOUNCES readers before the editor decides. Copies are
counted, not messages (a DSN sent twice is one bounce), and after the editor resumes a
trip only the bounces that came back since count (`Issue.mail_bounces_since`).

Windows, not the whole issue: a relay that breaks halfway through a million addresses
must trip within a window, not once 10 % of everything sent has bounced.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from outlet.core.addresses import email_digest
from outlet.newsletters.models import Delivery, HeldBounce, Issue, Suppression

if TYPE_CHECKING:
    from outlet.newsletters.sending.claims import Claimed, OutcomeRecorder

#: Fewer hard bounces than this never trip the breaker (a small list with two dead
#: addresses is not a broken relay).
MIN_BOUNCES = 5


def breaker_on() -> bool:
    return settings.NEWSLETTER_BOUNCE_BREAKER_RATE < 1


class BounceWindow:
    """One batch's share of its issue's breaker window."""

    def __init__(self, issue_id: int | None) -> None:
        self.issue_id = issue_id
        #: Accepted messages of this batch already added to the issue's window.
        self.counted = 0

    def accepted(self, total: int) -> None:
        """Add the batch's accepted messages not counted yet (`total` so far)."""
        new = total - self.counted
        if self.issue_id is None or new <= 0 or not breaker_on():
            return
        self.counted = total
        Issue.objects.filter(pk=self.issue_id).update(
            bounce_window_judged=F("bounce_window_judged") + new
        )
        issue_bounces_judge(issue_id=self.issue_id)

    def hard_bounce(self, recorder: OutcomeRecorder, delivery: Claimed, error: str) -> None:
        """The server refused the mailbox itself: fail the row, hold the address."""
        from outlet.newsletters.services import email_suppress

        if self.issue_id is None or not breaker_on():
            if recorder.failed(delivery, error):
                email_suppress(
                    email=delivery.subscriber.email,
                    reason=Suppression.Reason.HARD_BOUNCE,
                    detail=error[:300],
                )
            return
        recorder.drain()
        # The messages accepted before this refusal first, judged on their own: a batch
        # outgrows a window, and a relay breaking mid-batch must not have its first
        # refusal judged (and suppressed) among the hundreds accepted before it.
        self.accepted(recorder.counts["sent"])
        with transaction.atomic():
            if not recorder.failed(delivery, error):
                return  # no longer ours: the lane that holds it decides
            HeldBounce.objects.create(
                issue_id=self.issue_id,
                delivery_id=delivery.pk,
                email_hash=email_digest(delivery.subscriber.email),
            )
            Issue.objects.filter(pk=self.issue_id).update(
                bounce_window_judged=F("bounce_window_judged") + 1,
                bounce_window_hard=F("bounce_window_hard") + 1,
            )
        issue_bounces_judge(issue_id=self.issue_id)


def issue_bounces_judge(*, issue_id: int, final: bool = False) -> bool:
    """Judge the issue's breaker window once it is full (or, `final`, whatever its size):
    suppress its held bounces, or trip the breaker. True if the breaker is tripped."""
    if not breaker_on():
        return False
    sample = settings.NEWSLETTER_BOUNCE_BREAKER_SAMPLE
    window = (
        Issue.objects.filter(pk=issue_id)
        .values("bounce_window_judged", "bounce_window_hard", "bounce_breaker_tripped", "status")
        .first()
    )
    if window is None:
        return False
    # A batch finishing after a cancel: its bounces are judged now, not never.
    final = final or window["status"] == Issue.Status.CANCELLED
    full = window["bounce_window_judged"] >= sample
    if not (full or final or window["bounce_breaker_tripped"]):
        return False  # the common case: no lock taken
    if not window["bounce_window_hard"] and not window["bounce_breaker_tripped"]:
        if full:  # nothing held: start the window again without a lock
            Issue.objects.filter(
                pk=issue_id, bounce_window_hard=0, bounce_window_judged__gte=sample
            ).update(
                bounce_window_judged=F("bounce_window_judged") - window["bounce_window_judged"]
            )
        return False
    with transaction.atomic():
        issue = Issue.objects.select_for_update().filter(pk=issue_id).first()
        if issue is None:
            return False
        if issue.bounce_breaker_tripped:
            HeldBounce.objects.filter(issue_id=issue_id, for_editor=False).update(for_editor=True)
            return True
        judged, hard = issue.bounce_window_judged, issue.bounce_window_hard
        if judged < sample and not (final or issue.status == Issue.Status.CANCELLED):
            return False  # another lane judged it meanwhile
        # A short last window of a long send is measured against a full window.
        base = judged if judged >= sample or issue.planned_count <= sample else sample
        if hard >= MIN_BOUNCES and hard > settings.NEWSLETTER_BOUNCE_BREAKER_RATE * base:
            _trip(issue, judged=judged, hard=hard)
            return True
        held = list(
            HeldBounce.objects.filter(issue_id=issue_id, for_editor=False).values_list(
                "pk", "email_hash", "delivery__error"
            )
        )
        _suppress(held)
        Issue.objects.filter(pk=issue_id).update(
            bounce_window_judged=F("bounce_window_judged") - judged,
            bounce_window_hard=F("bounce_window_hard") - hard,
        )
    return False


def issue_mail_bounce_hold(*, delivery_id: int, email: str) -> bool:
    """A hard bounce that came back by mail for `delivery_id` (its `BounceMessage` row
    written in the same transaction): True if the breaker holds it for the editor, False
    if the caller should suppress the address now."""
    if not breaker_on():
        return False
    issue_id = Delivery.objects.filter(pk=delivery_id).values_list("issue_id", flat=True).first()
    if issue_id is None:
        return False
    with transaction.atomic():
        issue = Issue.objects.select_for_update().filter(pk=issue_id).first()
        if issue is None:
            return False
        if not issue.bounce_breaker_tripped:
            judged, hard = _mail_window(issue, delivery_id=delivery_id)
            # A short window (the start of a long issue) is measured against a full one.
            base = max(judged, min(settings.NEWSLETTER_BOUNCE_BREAKER_SAMPLE, issue.planned_count))
            if hard < MIN_BOUNCES or hard <= settings.NEWSLETTER_BOUNCE_BREAKER_RATE * base:
                return False
            _trip(issue, judged=judged, hard=hard, by_mail=True)
        HeldBounce.objects.update_or_create(
            delivery_id=delivery_id,
            defaults={"issue_id": issue_id, "email_hash": email_digest(email), "for_editor": True},
        )
    return True


def _mail_window(issue: Issue, *, delivery_id: int) -> tuple[int, int]:
    """(copies judged, hard bounces among them) in the window a mailed bounce falls in:
    the NEWSLETTER_BOUNCE_BREAKER_SAMPLE copies the relay accepted up to its own, so a
    relay breaking late in a long issue trips within a window (not once the rate's share
    of the whole issue has bounced). Copies, not messages: a DSN sent twice (or replayed
    by whoever holds its return path) is one. Since the editor last resumed after a trip,
    the copies that bounced before were decided then, and are no sample now."""
    from django.db.models import Q

    from outlet.newsletters.bounces.models import BounceMessage
    from outlet.newsletters.bounces.reading import Outcome

    window = list(
        Delivery.objects.filter(issue_id=issue.pk, pk__lte=delivery_id)
        .filter(Q(status=Delivery.Status.SENT) | Q(pk=delivery_id))
        .order_by("-pk")
        .values_list("pk", flat=True)[: settings.NEWSLETTER_BOUNCE_BREAKER_SAMPLE]
    )
    bounced = BounceMessage.objects.filter(outcome=Outcome.HARD, delivery_id__in=window)
    decided: set[int] = set()
    if issue.mail_bounces_since is not None:
        decided = set(
            bounced.filter(received_at__lt=issue.mail_bounces_since).values_list(
                "delivery_id", flat=True
            )
        )
    hard = set(bounced.values_list("delivery_id", flat=True)) - decided
    return len(window) - len(decided), len(hard)


def _trip(issue: Issue, *, judged: int, hard: int, by_mail: bool = False) -> None:
    rate = settings.NEWSLETTER_BOUNCE_BREAKER_RATE
    reason = (
        f"Paused by the bounce breaker: {hard} of {judged} messages were refused as unknown "
        f"mailboxes ({hard / max(judged, 1):.0%}, more than {rate:.0%}). Nobody was suppressed. "
        "A relay or recipient check refusing everyone looks like this: fix it, then lift "
        "the held bounces (sent again) or confirm them (suppressed), and resume."
    )
    if by_mail:
        reason = (
            f"Stopped by the bounce breaker: {hard} of the {judged} copies our relay accepted "
            f"came back as unknown mailboxes ({hard / max(judged, 1):.0%}, more than "
            f"{rate:.0%}); the later ones are held, not suppressed. A relay whose upstream "
            "refuses everyone looks like this: fix it; confirm the held bounces if real."
        )
    fields = ["bounce_breaker_tripped", "pause_reason", "auto_resume_at", "updated_at"]
    issue.bounce_breaker_tripped = True
    issue.pause_reason = reason[:300]
    issue.auto_resume_at = None
    if issue.status == Issue.Status.SENDING:
        issue.status = Issue.Status.PAUSED
        fields.append("status")
    issue.save(update_fields=fields)
    HeldBounce.objects.filter(issue_id=issue.pk, for_editor=False).update(for_editor=True)


def _suppress(held: list[tuple[int, str, str]]) -> None:
    """Suppress the addresses that bounced (by their digest then, not the reader's
    address now) and forget the held rows."""
    from outlet.newsletters.services import email_hash_suppress

    for _, digest, error in held:
        email_hash_suppress(
            email_hash=digest, reason=Suppression.Reason.HARD_BOUNCE, detail=error[:300]
        )
    HeldBounce.objects.filter(pk__in=[pk for pk, _, _ in held]).delete()


def issue_held_bounces_confirm(*, issue: Issue) -> int:
    """The editor's word: the held bounces were real. Their addresses are suppressed;
    how many. Safe to repeat."""
    with transaction.atomic():
        Issue.objects.select_for_update().filter(pk=issue.pk).first()
        held = list(
            HeldBounce.objects.filter(issue_id=issue.pk, for_editor=True).values_list(
                "pk", "email_hash", "delivery__error"
            )
        )
        _suppress(held)
    return len(held)


def issue_held_bounces_lift(*, issue: Issue) -> int:
    """The editor's word: the server was wrong. The held rows refused at sending go back
    to be sent again (the refused attempt not counted); those that came back by mail
    after the relay took the copy are only forgotten (any time: nothing is sent again);
    nobody is suppressed; how many."""
    with transaction.atomic():
        locked = Issue.objects.select_for_update().get(pk=issue.pk)
        held = HeldBounce.objects.filter(issue_id=issue.pk, for_editor=True)
        refused = held.filter(delivery__status=Delivery.Status.FAILED)
        if locked.status not in (Issue.Status.PAUSED, Issue.Status.SENDING) and refused.exists():
            raise ValidationError(
                "Held bounces can be sent again only while the issue is paused or sending; "
                "confirm them instead."
            )
        ids = list(held.values_list("delivery_id", flat=True))
        Delivery.objects.filter(pk__in=ids, status=Delivery.Status.FAILED).update(
            status=Delivery.Status.PENDING,
            attempts=F("attempts") - 1,
            next_attempt_at=timezone.now(),
            error="",
        )
        held.delete()
    return len(ids)


def issue_breaker_reset(*, issue: Issue) -> list[str]:
    """On resume after a trip: a fresh window, and later hard bounces judged by it again
    (the held ones still wait for the editor). The fields changed, for
    `save(update_fields=...)`; none when the breaker had not tripped (an editor's own
    pause keeps the window it interrupted)."""
    if not issue.bounce_breaker_tripped:
        return []
    # Bounces a lane held under the trip but has not judged yet belong to the tripped
    # window, whose counts go now: the editor decides them (under the issue's lock, so a
    # bounce held after this is counted in the fresh window instead).
    HeldBounce.objects.filter(issue_id=issue.pk, for_editor=False).update(for_editor=True)
    issue.bounce_breaker_tripped = False
    issue.bounce_window_judged = issue.bounce_window_hard = 0
    issue.mail_bounces_since = timezone.now()
    return [
        "bounce_breaker_tripped",
        "bounce_window_judged",
        "bounce_window_hard",
        "mail_bounces_since",
    ]
