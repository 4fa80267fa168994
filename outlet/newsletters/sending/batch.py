"""What the SMTP and ESP loops share: the batch's result, the rate limit, the checks.

Contract: between messages (SMTP) or calls (ESP) a loop calls `still_sending`
at least every CHECK_SECONDS; it answers False once the issue is no longer
sending, and renews the batch's lease when due. `MailServerDown` is how a loop
says the server, not the recipients, is at fault: the rows are handed back and
the caller pauses the issue.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from django.core.cache import cache
from django.db import connection as db_connection
from django.db.models import Exists, OuterRef

from outlet.newsletters.models import Delivery, Issue, Newsletter, Segment
from outlet.newsletters.selectors import newsletter_recipients
from outlet.newsletters.sending.claims import Claimed, OutcomeRecorder

PLAN_CHUNK_SIZE = 2000
#: Outcomes are written per message; the issue's status is re-read (pause, cancel)
#: at least this often during a batch, and the lease is renewed once a third of it
#: has passed.
CHECK_SECONDS = 0.5


#: Refusals in a row, none about the mailbox itself, that make the server the fault.
SERVER_FAULT_REFUSALS = 5

#: anymail statuses that mean the ESP refused the address itself.
ESP_REFUSED = {"rejected", "invalid"}

#: BatchResult.stopped when the batch's lease ran out or was taken over mid-batch.
LEASE_LOST = "lease lost"


class MailServerDown(Exception):
    """The mail server refused connections or kept dropping them: pause, do not fail rows."""

    #: Resume by itself once the server answers again (an outage, not a misconfiguration).
    auto_resume = True


class MailServerRefusing(MailServerDown):
    """The server answers but refuses everyone (relay denied, sender not allowed): a
    setting to fix, so the issue waits for the editor rather than resuming by itself."""

    auto_resume = False


# --- Rate limit ----------------------------------------------------------------------


class RateLimiter:
    """A fixed one-second window counted in the cache (global when the cache is Redis)."""

    def __init__(self, per_second: int) -> None:
        self.per_second = per_second

    def acquire(self) -> None:
        if self.per_second <= 0:
            return
        while True:
            second = int(time.time())
            key = f"newsletters:rate:{second}"
            cache.add(key, 0, timeout=5)
            try:
                used = cache.incr(key)
            except ValueError:
                used = 1
            if used <= self.per_second:
                return
            time.sleep(max(0.0, second + 1 - time.time()) + 0.001)


# --- Sending a batch -----------------------------------------------------------------


@dataclass
class BatchResult:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    retry: int = 0
    skipped: int = 0
    stopped: str = ""

    def counts_take(self, counts: dict[str, int]) -> None:
        self.sent, self.failed = counts["sent"], counts["failed"]
        self.retry, self.skipped = counts["retry"], counts["skipped"]


class LeftUnmailable:
    """Which rows of a batch, still to send, lost their reader since the claim
    (unsubscribed, suppressed, paused the newsletter): the batch's own leased rows
    whose subscriber is no longer among the newsletter's recipients.

    At full speed this is asked every CHECK_SECONDS, so its cost must not grow
    with the rows left: the query names the batch by its lease token and id range
    rather than listing ids, and is compiled once per batch, then run as SQL.
    """

    def __init__(
        self, *, issue_id: int, newsletter: Newsletter, token: uuid.UUID, claimed: list[Claimed]
    ) -> None:
        self.issue_id = issue_id
        self.newsletter = newsletter
        self.token = token
        self.first = min((d.pk for d in claimed), default=0)
        self.last = max((d.pk for d in claimed), default=0)
        self.statement: tuple[str, tuple] | None = None

    def __call__(self) -> set[int]:
        if self.statement is None:
            still = newsletter_recipients(self.newsletter, Segment.ALL).filter(
                pk=OuterRef("subscriber_id")
            )
            rows = (
                Delivery.objects.filter(
                    issue_id=self.issue_id,
                    status=Delivery.Status.SENDING,
                    pk__gte=self.first,
                    pk__lte=self.last,
                    lease_token=self.token,
                )
                .filter(~Exists(still))
                .order_by()
                .values_list("pk", flat=True)
            )
            self.statement = rows.query.sql_with_params()
        sql, params = self.statement
        with db_connection.cursor() as cursor:
            cursor.execute(sql, params)
            return {pk for (pk,) in cursor.fetchall()}


def stop_reason(
    recorder: OutcomeRecorder,
    issue_id: int,
    newsletter: Newsletter,
    remaining: list[Claimed],
    *,
    next_only: bool = False,
    left_unmailable: LeftUnmailable | None = None,
    held: list[Claimed] | None = None,
) -> str:
    """Between messages or calls: why to stop ("" to go on).

    Stops once the issue is no longer sending, or the lease is lost (renewed here
    when due). Marks the remaining readers who may no longer get the newsletter
    (unsubscribed or suppressed since the claim) as not mailable: the loops skip them.
    With `next_only` (a loop that checks before every message) only the next reader
    is asked about, so the check stays one small query whatever the batch size;
    with `left_unmailable` the batch's rows are asked about by one precompiled query.
    A renewal covers the rows left and the `held` ones (refusals awaiting a verdict):
    every row the batch still holds, or the fence would outlive some of their leases.
    """
    recorder.drain()
    recorder.bounces.accepted(recorder.counts["sent"])  # may trip the breaker: read below
    status = Issue.objects.filter(pk=issue_id).values_list("status", flat=True).first()
    if status != Issue.Status.SENDING:
        return "paused or cancelled"
    pending = [d for d in remaining if d.mailable]
    asked = pending[:1] if next_only else pending
    if asked and left_unmailable is not None and not next_only:
        gone = left_unmailable()
        for delivery in asked:
            delivery.mailable = delivery.pk not in gone
    elif asked:
        still = set(
            newsletter_recipients(newsletter, Segment.ALL)
            .filter(pk__in=[d.subscriber_id for d in asked])
            .values_list("pk", flat=True)
        )
        for delivery in asked:
            delivery.mailable = delivery.subscriber_id in still
    if not recorder.renew_if_due([d for d in pending if d.mailable] + (held or [])):
        return LEASE_LOST
    return ""
