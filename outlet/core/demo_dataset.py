"""A large synthetic audience for trying the admin and the engine at scale.

`demo_dataset_load(subscribers=1_000_000)` adds, next to the demo content:
`subscribers` addresses (`reader<i>@dataset.outlet.test`, spread over two years,
mostly active, a few pending, unsubscribed or bounced and suppressed), each on
The Daily Briefing and every third on The Weekly Analysis; a fifth of them
donors with one paid donation each (half of those more than a year ago: a
tenth of the list is lapsed); and `issues` sent issues of the daily, each with
a delivery per active subscriber.

Rows are generated in Python and written with COPY on PostgreSQL (executemany
elsewhere), in chunks, so memory stays flat; rows derived from rows already
written (subscriptions, deliveries) are one INSERT … SELECT. About a minute per
million subscribers on PostgreSQL, plus the deliveries.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from outlet.core.addresses import email_digest
from outlet.core.bulk import rows_write
from outlet.donations.models import Donation, Donor
from outlet.newsletters.models import (
    Delivery,
    Issue,
    Newsletter,
    Subscriber,
    Subscription,
    Suppression,
)

DATASET_DOMAIN = "dataset.outlet.test"
CHUNK_ROWS = 20_000
SPAN = timedelta(days=730)
DATASET_PATTERN = f"%@{DATASET_DOMAIN}"


def dataset_address(index: int) -> str:
    return f"reader{index}@{DATASET_DOMAIN}"


def _subscriber_status(index: int) -> str:
    if index % 100 == 2:
        return Subscriber.Status.BOUNCED
    if index % 50 == 1:
        return Subscriber.Status.PENDING
    if index % 20 == 3:
        return Subscriber.Status.UNSUBSCRIBED
    return Subscriber.Status.ACTIVE


def _subscriber_rows(start: int, count: int, now: datetime) -> Iterator[tuple]:
    step = SPAN / max(count, 1)
    for index in range(start, start + count):
        address = dataset_address(index)
        created = now - SPAN + step * (index - start)
        status = _subscriber_status(index)
        confirmed = None if status == Subscriber.Status.PENDING else created + timedelta(minutes=9)
        unsubscribed = (
            created + timedelta(days=20) if status == Subscriber.Status.UNSUBSCRIBED else None
        )
        yield (
            address, email_digest(address), f"Reader {index}", status,
            Subscriber.Source.IMPORT if index % 4 == 0 else Subscriber.Source.FORM,
            uuid.uuid4(), 0, created, confirmed, min(unsubscribed, now) if unsubscribed else None,
        )  # fmt: skip


def demo_dataset_load(
    *,
    subscribers: int,
    issues: int = 5,
    progress: Callable[[str], None] = lambda message: None,
) -> dict[str, int]:
    """Add the synthetic audience (see the module's docstring); returns row counts."""
    from outlet.newsletters.demo import newsletter_demo_load

    newsletter_demo_load()
    if Subscriber.objects.filter(email=dataset_address(1)).exists():
        raise ValueError("The data set is already loaded (reader1@dataset.outlet.test exists).")
    daily = Newsletter.objects.get(slug="daily-briefing")
    weekly = Newsletter.objects.get(slug="weekly-analysis")
    now = timezone.now()
    counts: dict[str, int] = {}
    with transaction.atomic():
        counts["subscribers"] = rows_write(
            Subscriber._meta.db_table,
            [
                "email",
                "email_hash",
                "name",
                "status",
                "source",
                "token",
                "soft_bounce_count",
                "created_at",
                "confirmed_at",
                "unsubscribed_at",
            ],  # fmt: skip
            _subscriber_rows(1, subscribers, now),
        )
        progress(f"{counts['subscribers']} subscribers")
        bounced = (
            (email_digest(dataset_address(i)), Suppression.Reason.HARD_BOUNCE, "", now)
            for i in range(1, subscribers + 1)
            if _subscriber_status(i) == Subscriber.Status.BOUNCED
        )
        counts["suppressions"] = rows_write(
            Suppression._meta.db_table, ["email_hash", "reason", "detail", "created_at"], bounced
        )
        counts["subscriptions"] = _insert_select(
            Subscription._meta.db_table,
            "subscriber_id, newsletter_id, created_at, confirmed_at",
            "SELECT id, %s, created_at, confirmed_at FROM {subscriber} WHERE email LIKE %s",
            [daily.pk, DATASET_PATTERN],
        )
        counts["subscriptions"] += _insert_select(
            Subscription._meta.db_table,
            "subscriber_id, newsletter_id, created_at, confirmed_at",
            "SELECT id, %s, created_at, confirmed_at FROM {subscriber} "
            "WHERE email LIKE %s AND id %% 3 = 0",
            [weekly.pk, DATASET_PATTERN],
        )
        progress(f"{counts['subscriptions']} subscriptions")
        counts["donations"] = _donors_write(subscribers=subscribers, now=now)
        progress(f"{counts['donations']} donors with a paid donation each")
        counts["deliveries"] = 0
        for number in range(1, issues + 1):
            sent_at = now - timedelta(days=7 * (issues - number) + 1)
            issue = Issue.objects.create(
                newsletter=daily,
                subject=f"Daily Briefing, data set issue {number}",
                status=Issue.Status.SENT,
                started_at=sent_at - timedelta(minutes=20),
                sent_at=sent_at,
                planned_at=sent_at - timedelta(minutes=19),
                rendered_html="<p>Data set issue.</p>",
                rendered_text="Data set issue.",
            )
            added = _insert_select(
                Delivery._meta.db_table,
                "issue_id, subscriber_id, status, attempts, error, sent_at",
                "SELECT %s, id, 'sent', 1, '', %s FROM {subscriber} "
                "WHERE email LIKE %s AND status = 'active'",
                [issue.pk, connection.ops.adapt_datetimefield_value(sent_at), DATASET_PATTERN],
            )
            Issue.objects.filter(pk=issue.pk).update(planned_count=added)
            counts["deliveries"] += added
            progress(f"issue {number} of {issues}: {added} deliveries")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # VACUUM sets the visibility map (index-only counts); it cannot run in a transaction.
            command = "ANALYZE" if connection.in_atomic_block else "VACUUM ANALYZE"
            for model in (Subscriber, Subscription, Suppression, Donor, Donation, Delivery):
                cursor.execute(f"{command} {connection.ops.quote_name(model._meta.db_table)}")
        progress("vacuumed and analysed")
    return counts


def _insert_select(table: str, columns: str, select: str, params: Sequence = ()) -> int:
    """INSERT INTO table (columns) SELECT … FROM subscriber (named `{subscriber}`)."""
    select = select.format(subscriber=Subscriber._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} ({columns}) {select}", list(params))  # noqa: S608
        return cursor.rowcount


def _donors_write(*, subscribers: int, now: datetime) -> int:
    """A donor (same address) and one paid donation for every fifth subscriber; every
    tenth gave more than a year ago (lapsed), the others within the year."""
    donor_indexes = range(5, subscribers + 1, 5)
    rows_write(
        Donor._meta.db_table,
        ["email", "name", "created_at"],
        ((dataset_address(i), f"Reader {i}", now) for i in donor_indexes),
    )
    # Read before the COPY starts: the connection cannot fetch while it copies.
    donor_ids = list(
        Donor.objects.filter(email__endswith=f"@{DATASET_DOMAIN}").values_list("email", "pk")
    )

    def donations() -> Iterator[tuple]:
        for email, donor_id in donor_ids:
            email = str(email)  # the dataset's donors all have one
            index = int(email[len("reader") : email.index("@")])
            days_ago = 400 + index % 300 if index % 10 == 0 else index % 360
            paid = now - timedelta(days=days_ago, minutes=index % 1440)
            frequency = "month" if index % 3 == 0 else "once"
            yield (
                donor_id, "", "{}", False, "", False, frequency, 500 + (index % 40) * 100, 0,
                "usd", "paid", "", None, None, "", "", "", "", paid, paid, 0, 0, "", None, "",
            )  # fmt: skip

    columns = [
        "donor_id", "source", "utm", "public_credit", "public_name", "newsletter_opt_in",
        "frequency", "amount", "fee_amount", "currency", "status", "stripe_customer_id",
        "stripe_payment_intent_id", "stripe_invoice_id", "stripe_charge_id", "card_brand",
        "card_last4", "failure_message", "created_at", "paid_at", "refunded_amount",
        "disputed_amount", "dispute_status", "gift_id", "checkout_key",
    ]  # fmt: skip
    return rows_write(Donation._meta.db_table, columns, donations())
