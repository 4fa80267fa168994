"""Planning a send and reading its progress.

Contract: `deliveries_plan` inserts one pending `Delivery` per recipient, walking
subscribers by primary key in chunks (no OFFSET, never the whole list in memory);
the unique (issue, subscriber) constraint makes a repeated or resumed plan add no
row. `delivery_counts` and `next_wake_seconds` are the reads the tasks and the
admin's progress panel need.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import connection as db_connection
from django.db.models import Min, Model
from django.utils import timezone

from outlet.newsletters.models import (
    Delivery,
    Issue,
    Segment,
    Subscriber,
    Subscription,
    Suppression,
)
from outlet.newsletters.selectors import newsletter_recipients

PLAN_CHUNK_SIZE = 2000
#: A lane that has sent every row planned so far looks again this much later.
PLAN_WAIT_SECONDS = 1.0


def planner_statistics_ensure(*models: type[Model]) -> None:
    """ANALYZE the tables PostgreSQL holds no statistics for (never analysed).

    Without statistics the planner takes a table for a few pages and plans each
    batch's lookups by id as sequential scans of every delivery and subscriber.
    Autovacuum fills them in eventually, but not before a send that starts right
    after an import, or at all where autovacuum is off. A no-op elsewhere.
    """
    if db_connection.vendor != "postgresql":
        return
    tables = [model._meta.db_table for model in models]
    with db_connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE oid = ANY(%s::regclass[]) AND reltuples < 0",
            [tables],
        )
        for (table,) in cursor.fetchall():
            cursor.execute(f"ANALYZE {db_connection.ops.quote_name(table)}")


def delivery_statistics_refresh() -> None:
    """ANALYZE the delivery table (PostgreSQL; a no-op elsewhere)."""
    if db_connection.vendor == "postgresql":
        with db_connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {db_connection.ops.quote_name(Delivery._meta.db_table)}")


def deliveries_plan(*, issue: Issue, on_first_chunk=None) -> int:
    """Create a pending delivery for every recipient of the issue; returns the total.

    Walks subscribers by primary key, PLAN_CHUNK_SIZE at a time, so memory stays
    flat and a crashed plan can simply run again. `on_first_chunk` lets sending
    start while the rest is still being planned.
    """
    segment = issue.segment or Segment.ALL
    planner_statistics_ensure(Subscriber, Subscription, Suppression)
    last_id = 0
    first = True
    planned = 0
    analysed_at = 0  # the first chunk analyses, then each doubling
    while True:
        recipients = newsletter_recipients(issue.newsletter, segment, after_id=last_id)
        ids = list(recipients.values_list("pk", flat=True)[:PLAN_CHUNK_SIZE])
        if not ids:
            break
        if db_connection.vendor == "postgresql":  # one array parameter, no model instances
            with db_connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {Delivery._meta.db_table} "  # noqa: S608 (the model's table)
                    "(issue_id, subscriber_id, status, attempts, error) "
                    "SELECT %s, unnest(%s::bigint[]), %s, 0, '' ON CONFLICT DO NOTHING",
                    [issue.pk, ids, Delivery.Status.PENDING.value],
                )
        else:
            Delivery.objects.bulk_create(
                [Delivery(issue_id=issue.pk, subscriber_id=pk) for pk in ids],
                ignore_conflicts=True,
                batch_size=PLAN_CHUNK_SIZE,
            )
        last_id = ids[-1]
        planned += len(ids)
        if planned >= analysed_at * 2:
            # The claim and progress queries are planned from the table's statistics;
            # taken while it was small (or empty) they keep PostgreSQL scanning every
            # delivery once it holds a million. ANALYZE samples a fixed number of rows,
            # so refreshing it each time the issue's rows double stays linear.
            delivery_statistics_refresh()
            analysed_at = planned
        # The lanes wait for a plan only while it shows signs of life (next_wake_seconds).
        Issue.objects.filter(pk=issue.pk).update(heartbeat_at=timezone.now())
        if first and on_first_chunk is not None:
            on_first_chunk()
        first = False
    total = Delivery.objects.filter(issue=issue).count()
    Issue.objects.filter(pk=issue.pk).update(
        planned_count=total, planned_at=timezone.now(), heartbeat_at=timezone.now()
    )
    return total


def delivery_counts(*, issue: Issue) -> dict[str, int]:
    from django.db.models import Count

    counts = {status.value: 0 for status in Delivery.Status}
    for row in Delivery.objects.filter(issue=issue).values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    return counts


def next_wake_seconds(*, issue_id: int) -> float | None:
    """Seconds until some waiting row (leased elsewhere or backing off) becomes claimable."""
    now = timezone.now()
    earliest = Delivery.objects.filter(
        issue_id=issue_id, status__in=[Delivery.Status.PENDING, Delivery.Status.SENDING]
    ).aggregate(lease=Min("leased_until"), retry=Min("next_attempt_at"))
    times = [t for t in (earliest["lease"], earliest["retry"]) if t is not None]
    if not times:
        remaining = Delivery.objects.filter(
            issue_id=issue_id, status__in=[Delivery.Status.PENDING, Delivery.Status.SENDING]
        ).exists()
        if remaining:
            return 0.0
        # Lanes start after the plan's first chunk; one that catches up with a plan still
        # running comes back for the rows about to be added, instead of ending and
        # leaving the rest to beat's revival a lease period later. The plan stamps the
        # heartbeat after each chunk: one silent for a lease period has died (worker
        # killed, database error), and the lanes stop rather than poll it forever;
        # beat's revival plans again.
        alive_after = now - timedelta(seconds=settings.NEWSLETTER_LEASE_SECONDS)
        planning = Issue.objects.filter(
            pk=issue_id,
            status=Issue.Status.SENDING,
            planned_at__isnull=True,
            heartbeat_at__gt=alive_after,
        ).exists()
        return PLAN_WAIT_SECONDS if planning else None
    return max(0.0, (min(times) - now).total_seconds())
