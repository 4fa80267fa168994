"""
Emails owed to donors, and the one-INSERT "once" primitive they share with the record of
Stripe events.

`donor_email_queue` records an email owed (at most once per dedupe_key, the unique
constraint decides) and queues its task after commit; `donor_email_send` sends it once
however often it runs (the row is locked and its status checked); a receipt whose task was
never queued or never ran is picked up by `donor_emails_sweep` from beat.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from outlet.core.logs.context import log_context

from ..models import Donation, DonorEmail, Gift, StripeEvent

logger = logging.getLogger(__name__)


@cache
def _insert_once_sql(vendor: str, table: str, columns: tuple[str, ...], conflict: str) -> str:
    # Built once per (database, table, columns): quoting every name on every webhook was
    # a measurable share of the hot path's Python time.
    quote = connection.ops.quote_name
    names = ", ".join(quote(name) for name in columns)
    placeholders = ", ".join(["%s"] * len(columns))
    return (
        f"INSERT INTO {quote(table)} ({names}) VALUES ({placeholders}) "  # noqa: S608 (names from model meta, values bound)
        f"ON CONFLICT ({quote(conflict)}) DO NOTHING RETURNING id"
    )


def _insert_once(table: str, values: dict[str, Any], conflict: str) -> int | None:
    """INSERT … ON CONFLICT DO NOTHING RETURNING id: the new row's id, or None when the
    unique `conflict` column already holds the value. One round trip, no savepoint, and
    under concurrency the second writer waits for the first to commit, then gets None.
    (PostgreSQL and SQLite 3.35+ both speak it.)"""
    sql = _insert_once_sql(connection.vendor, table, tuple(values), conflict)
    with connection.cursor() as cursor:
        cursor.execute(sql, list(values.values()))
        row = cursor.fetchone()
    return row[0] if row else None


def stripe_event_record(*, event_id: str, event_type: str, created: int | None = None) -> bool:
    """Remember a Stripe event id (and Stripe's time of it, epoch seconds); False when it
    was already recorded (a repeat)."""
    values = {
        "event_id": event_id,
        "type": event_type[:100],
        "received_at": timezone.now(),
        "created": datetime.fromtimestamp(created, tz=UTC) if created else None,
    }
    inserted = _insert_once(StripeEvent._meta.db_table, values, "event_id")
    return inserted is not None


def receipt_dedupe_key(donation_id: int) -> str:
    """The one key a payment's receipt is owed under, whichever path records the payment
    (the webhook's fast UPDATE or payment_record): a second recording owes nothing."""
    return f"receipt:{donation_id}"


def donor_email_queue(
    *,
    kind: str,
    donor_id: int,
    donation_id: int | None = None,
    gift_id: int | None = None,
    dedupe_key: str | None = None,
    action_url: str = "",
) -> int | None:
    """Record an email owed and send it from the "mail" queue after commit.

    With a dedupe_key, the email is owed once however often this is called
    (the unique constraint decides); returns None when it was already owed."""
    from ..tasks import donor_email_send_task

    email_id = _insert_once(
        DonorEmail._meta.db_table,
        {
            "kind": kind,
            "donor_id": donor_id,
            "donation_id": donation_id,
            "gift_id": gift_id,
            "dedupe_key": dedupe_key,
            "status": DonorEmail.Status.READY,
            "created_at": timezone.now(),
            "attempts": 0,
            "last_error": "",
            # Only when there is one: a receipt (the webhook's hot path) keeps the statement
            # it always had, the column's database default filling it in.
            **({"action_url": action_url} if action_url else {}),
        },
        "dedupe_key",
    )
    if email_id is None:
        return None
    # robust: a broker that is down at commit is logged, never turned into an error for
    # the request that recorded a payment; donor_emails_sweep sends the email later.
    transaction.on_commit(lambda: donor_email_send_task.delay(email_id), robust=True)
    return email_id


def donor_email_send(*, donor_email_id: int) -> bool:
    """Send one owed email unless it has been sent. Returns True when it sent now.

    The row is locked while the message goes out, so two workers running the same task
    send once: the second waits, then sees `sent`."""
    from ..emails import donor_email_message

    with transaction.atomic():
        email = (
            DonorEmail.objects.select_for_update(of=("self",))
            .select_related("donor", "donation", "gift")
            .filter(pk=donor_email_id)
            .first()
        )
        if email is None or email.status == DonorEmail.Status.SENT:
            return False
        if email.kind == DonorEmail.Kind.PAYMENT_ACTION_REQUIRED and (
            email.donation is None
            or email.donation.status not in (Donation.Status.PENDING, Donation.Status.FAILED)
            or (email.gift is not None and email.gift.status == Gift.Status.CANCELLED)
        ):
            # The donor confirmed (or the renewal ended) before this went out: asking them
            # to confirm a payment already taken would only alarm them. A renewal failed by
            # an earlier attempt still waits: Stripe's retry is the one to confirm.
            email.status = DonorEmail.Status.SKIPPED
            email.last_error = "The renewal was no longer waiting for the donor."
            email.save(update_fields=["status", "last_error"])
            return False
        if email.kind == DonorEmail.Kind.PAYMENT_FAILED and (
            email.donation is None or email.donation.status != Donation.Status.FAILED
        ):
            # The bank debit went through after all (a retry paid it) before this went
            # out: telling the reader it failed would be false.
            email.status = DonorEmail.Status.SKIPPED
            email.last_error = "The payment no longer stands failed."
            email.save(update_fields=["status", "last_error"])
            return False
        if email.kind == DonorEmail.Kind.MANAGE_LINK:
            # Owed before reader accounts replaced donor sign-in links: its link would
            # not work; the donor asks /account/ for a new one.
            email.status = DonorEmail.Status.FAILED
            email.last_error = "Sign-in links now come from the reader account."
            email.save(update_fields=["status", "last_error"])
            return False
        if not email.donor.email:
            # The donor was erased: nobody to write to (a refund or a dispute after it).
            email.status = DonorEmail.Status.FAILED
            email.last_error = "The donor's address was erased."
            email.save(update_fields=["status", "last_error"])
            return False
        with log_context(donation_id=email.donation_id):
            donor_email_message(email).send()
        email.status = DonorEmail.Status.SENT
        email.sent_at = timezone.now()
        email.attempts += 1
        email.save(update_fields=["status", "sent_at", "attempts"])
    return True


def donor_email_failure_record(*, donor_email_id: int, error: str, final: bool) -> None:
    DonorEmail.objects.filter(pk=donor_email_id).exclude(status=DonorEmail.Status.SENT).update(
        attempts=F("attempts") + 1,
        last_error=error[:500],
        **({"status": DonorEmail.Status.FAILED} if final else {}),
    )


SWEEP_AFTER = timedelta(minutes=10)


def donor_emails_sweep(*, older_than: timedelta = SWEEP_AFTER, limit: int = 500) -> int:
    """Queue again every email owed but never tried (its task was not queued, because the
    broker was down at commit, or was lost before it ran). Sending stays once: the send
    task locks the row and skips a sent one. Emails whose sending failed are left to their
    own retries. Returns how many were queued; stops at the first broker error."""
    from ..tasks import donor_email_send_task

    stale = (
        DonorEmail.objects.filter(
            status=DonorEmail.Status.READY,
            attempts=0,
            created_at__lt=timezone.now() - older_than,
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    queued = 0
    for email_id in stale:
        try:
            donor_email_send_task.delay(email_id)
        except Exception:  # the broker is still down: try again at the next sweep
            logger.warning("Could not queue unsent donor email %s; will retry", email_id)
            break
        queued += 1
    if queued:
        logger.warning("Queued %s donor email(s) that had never been sent", queued)
    return queued
