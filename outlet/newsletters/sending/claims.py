"""Claims and leases: which worker may send which deliveries, and recording what happened.

Contract: `deliveries_claim` leases up to `size` claimable rows (due pending rows
and rows whose lease expired) to a fresh token; every later write about those rows
(`OutcomeRecorder`) is guarded by that token, so a worker that lost its lease can
change nothing. A row is marked sent only after the server accepted its message.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection as db_connection
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, Value
from django.utils import timezone

from outlet.newsletters.models import (
    Delivery,
    Issue,
    Newsletter,
    Segment,
    Subscriber,
)
from outlet.newsletters.selectors import newsletter_recipients
from outlet.newsletters.sending.breaker import BounceWindow

# --- Claiming ------------------------------------------------------------------------


@dataclass(slots=True)
class Recipient:
    """What sending needs of a subscriber (built from one query row, not a model)."""

    pk: int
    email: str
    name: str
    token: uuid.UUID


@dataclass(slots=True)
class Claimed:
    """A delivery leased to this batch."""

    pk: int
    attempts: int
    subscriber: Recipient
    #: May the subscriber still get the newsletter (asked in the same query as the claim)?
    mailable: bool = True
    #: Was this row among the refusals that last paused the issue? Its next refusal is
    #: judged on its own and does not count toward another pause.
    tripped_pause: bool = False

    @property
    def subscriber_id(self) -> int:
        return self.subscriber.pk


def _due(now: datetime) -> Q:
    return Q(status=Delivery.Status.PENDING) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )


def _lease_expired(now: datetime) -> Q:
    return Q(status=Delivery.Status.SENDING, leased_until__lt=now)


def claimable(now: datetime) -> Q:
    """Rows a batch may take: due pending rows, and rows whose worker's lease ran out."""
    return _due(now) | _lease_expired(now)


#: Per issue, the highest delivery id this process has claimed. A claim takes the rows
#: waiting for a next attempt that have come due first (a retry, a batch handed back;
#: few, and indexed apart), then looks past the frontier: behind it every row was
#: claimed once and is sent, failed or leased. Looked up from the issue's first row,
#: PostgreSQL walks every row already sent (statistics taken while the rows were pending
#: make the primary key look cheapest, and dead index entries wait for a VACUUM): 200 ms
#: a claim 700,000 rows into a send. Other rows behind it (a dead worker's expired
#: lease, rows a plan committed late) are looked up when no row is left ahead, as is
#: everything in a process that has claimed nothing of the issue yet.
_claimed_up_to: dict[int, int] = {}


def deliveries_claim(
    *, issue_id: int, size: int, newsletter: Newsletter | None = None
) -> tuple[uuid.UUID, list[Claimed], float]:
    """Lease up to `size` claimable deliveries of the issue to this caller: the lease
    token, the rows, and this process's monotonic time taken before the lease was
    stamped (for `OutcomeRecorder`, so its fence never outlives the lease).

    With `newsletter`, each claimed row also says whether its subscriber may still
    get that newsletter (`newsletter_recipients`, asked in the same query).

    The UPDATE repeats the claimable condition, so of two workers that picked
    the same candidates only one gets each row (SQLite serialises writers;
    PostgreSQL locks candidates with SKIP LOCKED first, so they rarely overlap).
    Pending rows and expired leases are looked up separately, each walking the
    (issue, status, id) index in order and stopping at `size`: one query with
    an OR would collect and sort every pending row of the issue on each claim.
    Rows come due for a next attempt are looked up first, then pending rows past
    `_claimed_up_to`.
    """
    token = uuid.uuid4()
    started = time.monotonic()  # before the stamp: the fence errs on the early side
    now = database_now()
    rows = Delivery.objects.filter(issue_id=issue_id).order_by("id")
    frontier = _claimed_up_to.get(issue_id)
    retries = rows.filter(  # delivery_retry_idx: only rows that wait for a next attempt
        status=Delivery.Status.PENDING, next_attempt_at__isnull=False, next_attempt_at__lte=now
    )
    if frontier is None:
        lookups = [retries, rows.filter(_due(now))]
    else:
        ahead, behind = rows.filter(id__gt=frontier), rows.filter(id__lte=frontier)
        lookups = [retries, ahead.filter(_due(now)), behind.filter(_due(now))]
    lookups.append(rows.filter(_lease_expired(now)))
    with transaction.atomic():
        ids: list[int] = []
        for candidates in lookups:
            if ids:  # FOR UPDATE returns rows this transaction has locked already
                candidates = candidates.exclude(id__in=ids)
            if db_connection.features.has_select_for_update_skip_locked:
                candidates = candidates.select_for_update(skip_locked=True)
            ids += candidates.values_list("id", flat=True)[: size - len(ids)]
            if len(ids) >= size:
                break
        if not ids:
            return token, [], started
        _claimed_up_to[issue_id] = max(frontier or 0, *ids)
        Delivery.objects.filter(claimable(now), id__in=ids).update(
            status=Delivery.Status.SENDING,
            lease_token=token,
            leased_until=now + timedelta(seconds=settings.NEWSLETTER_LEASE_SECONDS),
            attempts=F("attempts") + 1,
        )
    leased = Delivery.objects.filter(
        id__in=ids, lease_token=token, status=Delivery.Status.SENDING
    ).annotate(
        mailable=Exists(
            newsletter_recipients(newsletter, Segment.ALL).filter(pk=OuterRef("subscriber_id"))
        )
        if newsletter is not None
        else Value(True)
    )
    found = leased.order_by("id").values_list(
        "id", "attempts", "subscriber_id", "subscriber__email", "subscriber__name",
        "subscriber__token", "mailable", "error",
    )  # fmt: skip
    claimed = [
        Claimed(
            pk, attempts, Recipient(subscriber_id, email, name, link_token), mailable,
            error.startswith(PAUSE_MARK),
        )
        for pk, attempts, subscriber_id, email, name, link_token, mailable, error in found
    ]  # fmt: skip
    return token, claimed, started


# --- Recording outcomes ------------------------------------------------------------


#: The error a row handed back by a server-wide pause carries (see `release`).
PAUSE_MARK = "paused the issue: "
SENT_STATEMENT = b"outlet_delivery_sent"
_SENT = Delivery.Status.SENT.value.encode()
#: What `OutcomeRecorder.retry_later` did.
RETRIED, GAVE_UP = "retried", "gave up"
#: Replies to pipelined outcome writes read at least this often (bounds the socket buffers).
UNREAD_REPLIES_MAX = 25


def relay_acceptance_only() -> bool:
    """Mail goes to our own relay with return paths on: its acceptance is no delivery."""
    from outlet.newsletters.bounces.addresses import return_paths_on

    return return_paths_on()


def lease_span() -> float:
    """How long this worker treats a fresh lease as its own: the lease, less a margin."""
    lease = settings.NEWSLETTER_LEASE_SECONDS
    return lease - min(5.0, lease / 10)


def database_now() -> datetime:
    """The database's clock. Leases are stamped and judged on it, so workers whose own
    clocks disagree still agree on when a lease ends."""
    if db_connection.vendor == "postgresql":
        with db_connection.cursor() as cursor:
            cursor.execute("SELECT statement_timestamp()")
            return cursor.fetchone()[0]
    return timezone.now()


class OutcomeRecorder:
    """Writes each outcome as soon as it is known, guarded by the lease token.

    One short autocommit UPDATE per message. On PostgreSQL the "sent" UPDATE is
    handed to the server (written to its socket) before the next message goes
    out, and its reply is read while that message travels, so recording costs
    no extra round trip: a statement the server has received is executed even
    if this worker is killed a moment later. The session also skips waiting for
    the WAL flush (synchronous_commit off) during the batch: a worker crash
    loses nothing that way; only a crash of the database server itself could
    forget the last few outcomes, and those messages would go out again.
    """

    def __init__(
        self, token: uuid.UUID, *, lease_started: float | None = None, issue_id: int | None = None
    ) -> None:
        self.token = token
        #: Each renewal also stamps the issue's heartbeat: a batch that outlasts the lease
        #: (rate-limited) is alive, and beat's stall check must not start lanes beside it.
        self.issue_id = issue_id
        self.table = Delivery._meta.db_table
        self.token_db = Delivery._meta.get_field("lease_token").get_db_prep_value(
            token, db_connection
        )
        self.token_bytes = str(token).encode()
        self.postgres = db_connection.vendor == "postgresql"
        self.pgconn: Any = None
        self.awaiting_reply = False
        self.pipelined = False
        self.unread_syncs = 0
        self.pipeline_error: bytes | None = None
        self.sent_subscriber_ids: list[int] = []
        self.counts = {"sent": 0, "failed": 0, "retry": 0, "skipped": 0}
        #: This batch's share of the issue's bounce-rate breaker window.
        self.bounces = BounceWindow(issue_id)
        # `deliveries_claim` took lease_started before stamping the lease on the database.
        self.renewed_at = time.monotonic() if lease_started is None else lease_started
        self.lease_deadline = self.renewed_at + lease_span()

    def __enter__(self) -> OutcomeRecorder:
        if self.postgres:
            with db_connection.cursor() as cursor:
                cursor.execute("SET synchronous_commit TO OFF")
            self.pgconn = db_connection.connection.pgconn
            sent_sql = (
                f"UPDATE {self.table} SET status = $1, sent_at = $2, lease_token = NULL, "  # noqa: S608 (table name from the model)
                "leased_until = NULL, error = '' WHERE id = $3 AND lease_token = $4"
            ).encode()
            # Prepared once per batch, so the server parses and plans it once, not per message.
            self.pgconn.send_prepare(SENT_STATEMENT, sent_sql)
            self.awaiting_reply = True
            self.drain()
        return self

    def __exit__(self, *exc) -> None:
        self.drain()
        if self.postgres:
            with db_connection.cursor() as cursor:
                cursor.execute(f"DEALLOCATE {SENT_STATEMENT.decode()}")
                cursor.execute("RESET synchronous_commit")

    def drain(self) -> None:
        """Read every reply still due from the server; call before any other query."""
        if self.pgconn is None:
            return
        from psycopg import DatabaseError, pq

        error = None
        if self.awaiting_reply:
            self.awaiting_reply = False
            while (reply := self.pgconn.get_result()) is not None:
                if reply.status != pq.ExecStatus.COMMAND_OK:
                    error = reply.error_message
        if self.pipelined:
            error = self._read_replies() or self.pipeline_error or error
            self.pipeline_error = None
            self.pgconn.exit_pipeline_mode()
            self.pipelined = False
        if error:
            message = (error or b"").decode(errors="replace")
            raise DatabaseError(f"recording a sent delivery failed: {message}")

    def _read_replies(self) -> bytes | None:
        """Read the replies to the pipelined outcomes sent so far (staying in pipeline
        mode); the last error message, if any."""
        from psycopg import pq

        error = None
        while self.unread_syncs:
            reply = self.pgconn.get_result()
            if reply is None:
                continue  # the end of one statement's results
            if reply.status == pq.ExecStatus.PIPELINE_SYNC:
                self.unread_syncs -= 1
            elif reply.status != pq.ExecStatus.COMMAND_OK:
                error = reply.error_message
        return error

    def sent(self, delivery: Claimed) -> None:
        now = timezone.now()
        if self.pgconn is not None:
            # Pipeline mode: the UPDATE and a Sync (its own commit) go to the server at
            # once and this worker moves on; the replies are read in batches.
            if not self.pipelined:
                self.drain()
                self.pgconn.enter_pipeline_mode()
                self.pipelined = True
            self.pgconn.send_query_prepared(
                SENT_STATEMENT,
                [_SENT, now.isoformat().encode(), b"%d" % delivery.pk, self.token_bytes],
            )
            self.pgconn.pipeline_sync()
            self.unread_syncs += 1
            if self.unread_syncs >= UNREAD_REPLIES_MAX:
                self.pipeline_error = self._read_replies() or self.pipeline_error
                if self.pipeline_error:
                    self.drain()  # leaves pipeline mode and raises it
        else:
            with db_connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {self.table} SET status = %s, sent_at = %s, lease_token = NULL, "  # noqa: S608 (table name from the model)
                    "leased_until = NULL, error = '' WHERE id = %s AND lease_token = %s",
                    [
                        Delivery.Status.SENT.value,
                        db_connection.ops.adapt_datetimefield_value(now),
                        delivery.pk,
                        self.token_db,
                    ],
                )
        self.sent_subscriber_ids.append(delivery.subscriber_id)
        self.counts["sent"] += 1

    def failed(self, delivery: Claimed, error: str) -> bool:
        """Mark the row failed; False if it was no longer ours (then write nothing else
        about its subscriber either: the lane that holds it now decides)."""
        self.drain()
        written = Delivery.objects.filter(pk=delivery.pk, lease_token=self.token).update(
            status=Delivery.Status.FAILED, lease_token=None, leased_until=None, error=error[:300]
        )
        self.counts["failed"] += written
        return bool(written)

    def retry_later(self, delivery: Claimed, error: str) -> str | None:
        """Back to pending with exponential backoff: RETRIED, or GAVE_UP (failed) once
        attempts are used up; None if the row was no longer ours."""
        self.drain()
        if delivery.attempts >= settings.NEWSLETTER_MAX_ATTEMPTS:
            failed = self.failed(delivery, f"gave up after {delivery.attempts} attempts: {error}")
            return GAVE_UP if failed else None
        delay = settings.NEWSLETTER_RETRY_SECONDS * 2 ** max(0, delivery.attempts - 1)
        written = Delivery.objects.filter(pk=delivery.pk, lease_token=self.token).update(
            status=Delivery.Status.PENDING,
            lease_token=None,
            leased_until=None,
            next_attempt_at=timezone.now() + timedelta(seconds=delay),
            error=error[:300],
        )
        self.counts["retry"] += written
        return RETRIED if written else None

    def skipped(self, deliveries: list[Claimed]) -> None:
        self.drain()
        if deliveries:
            Delivery.objects.filter(
                pk__in=[d.pk for d in deliveries], lease_token=self.token
            ).update(status=Delivery.Status.SKIPPED, lease_token=None, leased_until=None)
            self.counts["skipped"] += len(deliveries)

    def release(self, deliveries: Iterable[Claimed], *, paused_by: str = "") -> None:
        """Hand unsent rows back untouched (pause, cancel, server down): not an attempt.

        With `paused_by` (the refusals that made the server look at fault), the rows
        also wait NEWSLETTER_RETRY_SECONDS, so the rest of the list is claimed before
        them, and carry PAUSE_MARK, so their next refusal is judged on its own: five
        dead addresses in a row cannot pause the issue again and again.
        """
        self.drain()
        ids = [d.pk for d in deliveries]
        if not ids:
            return
        # A next attempt time, so the rows are found first once due (delivery_retry_idx).
        marked: dict[str, Any] = {"next_attempt_at": timezone.now()}
        if paused_by:
            marked = {
                "error": (PAUSE_MARK + paused_by)[:300],
                "next_attempt_at": timezone.now()
                + timedelta(seconds=settings.NEWSLETTER_RETRY_SECONDS),
            }
        Delivery.objects.filter(pk__in=ids, lease_token=self.token).update(
            status=Delivery.Status.PENDING,
            lease_token=None,
            leased_until=None,
            attempts=F("attempts") - 1,
            **marked,
        )

    def lease_held(self) -> bool:
        """The fence before each message: is the lease certainly still ours?

        No query: the lease was stamped on the database clock when it was claimed or
        renewed, and this process's monotonic clock counts the same seconds from a
        moment taken just before that stamp (for the claim as for a renewal), so the
        fence always ends before the lease; `lease_span`'s margin covers clock rate
        differences on top.
        """
        return time.monotonic() < self.lease_deadline

    def renew(self, deliveries: list[Claimed]) -> bool:
        """Extend the lease of these rows on the database clock. False when any of them
        is no longer ours (its lease ran out, or another lane took it over): the batch
        must stop before sending another message."""
        self.drain()
        started = time.monotonic()
        ids = [d.pk for d in deliveries]
        if not ids:
            return True
        now = database_now()
        renewed = Delivery.objects.filter(
            pk__in=ids,
            lease_token=self.token,
            status=Delivery.Status.SENDING,
            leased_until__gt=now,
        ).update(leased_until=now + timedelta(seconds=settings.NEWSLETTER_LEASE_SECONDS))
        if renewed < len(ids):
            return False
        if self.issue_id is not None:
            Issue.objects.filter(pk=self.issue_id).update(heartbeat_at=timezone.now())
        self.renewed_at = started
        self.lease_deadline = started + lease_span()
        return True

    def renew_if_due(self, deliveries: list[Claimed]) -> bool:
        """Renew once a third of the lease has passed; False if the lease is lost."""
        if time.monotonic() - self.renewed_at < settings.NEWSLETTER_LEASE_SECONDS / 3:
            return True
        return self.renew(deliveries)

    def finish(self) -> None:
        """A delivery ends a run of soft bounces (one query for the batch); the batch's
        accepted messages join the breaker's window. Through our own relay with a bounce
        mailbox, the relay's acceptance is no delivery: a copy that never comes back ends
        the run instead (bounces/intake.py)."""
        self.drain()
        self.bounces.accepted(self.counts["sent"])
        if self.sent_subscriber_ids and not relay_acceptance_only():
            Subscriber.objects.filter(
                pk__in=self.sent_subscriber_ids, soft_bounce_count__gt=0
            ).update(soft_bounce_count=0)
