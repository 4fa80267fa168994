"""The state of the business, read at scrape time from indexed rows and the broker.

A Prometheus collector: each scrape runs a handful of grouped counts over indexes
(issues by status, one issue's deliveries by status over the claim index, donor
emails waiting over a partial index) and asks the broker for each queue's depth.
Each part is measured on its own: a part that fails (the broker down) is reported in
`outlet_metrics_part_up` and leaves the others standing.

Deliveries are counted for every sending or paused issue and METRICS_RECENT_ISSUES
recently started others, so the `issue` label stays a handful of values.

Figures that read many rows (donations past ESTIMATE_ABOVE rows, a finished issue's
deliveries past it) are kept SHARED_FIGURES_SECONDS in the shared cache, as the admin's
figures are: every web machine and every Prometheus then share one computation a minute.
A sending issue's deliveries are always counted live, over the claim index.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Min, Sum
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

#: Why an issue is paused, as a label: derived from the issue's fields, never its text.
PAUSE_BREAKER, PAUSE_MAIL_SERVER, PAUSE_EDITOR = "bounce_breaker", "mail_server_down", "editor"


#: How long figures that read many rows are kept in the shared cache.
SHARED_FIGURES_SECONDS = 60


def _shared(key: str, compute: Callable[[], Any], *, large: bool) -> Any:
    """`compute()`, from the shared cache when `large` (computed at most once a minute)."""
    if not large:
        return compute()
    value = cache.get(key)
    if value is None:
        value = compute()
        cache.set(key, value, SHARED_FIGURES_SECONDS)
    return value


def donations_many() -> bool:
    from outlet.core.paginators import ESTIMATE_ABOVE, table_row_estimate
    from outlet.donations.models import Donation

    return (table_row_estimate(Donation) or 0) > ESTIMATE_ABOVE


def _timestamp(value) -> float:
    return value.timestamp() if value is not None else 0.0


def issue_metrics() -> Iterator[Metric]:
    from outlet.newsletters.models import Delivery, Issue

    by_status = GaugeMetricFamily(
        "outlet_issues", "Newsletter issues by status.", labels=["status"]
    )
    counts = {s.value: 0 for s in Issue.Status}
    for row in Issue.objects.values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    for status, n in counts.items():
        by_status.add_metric([status], n)
    yield by_status

    paused = GaugeMetricFamily(
        "outlet_issues_paused",
        "Paused issues by why: bounce_breaker (too many hard bounces, waits for an editor), "
        "mail_server_down (resumes by itself), editor (an editor or a takedown paused it).",
        labels=["reason"],
    )
    reasons = dict.fromkeys((PAUSE_BREAKER, PAUSE_MAIL_SERVER, PAUSE_EDITOR), 0)
    for tripped, auto_resume in Issue.objects.filter(status=Issue.Status.PAUSED).values_list(
        "bounce_breaker_tripped", "auto_resume_at"
    ):
        reason = PAUSE_BREAKER if tripped else PAUSE_MAIL_SERVER if auto_resume else PAUSE_EDITOR
        reasons[reason] += 1
    for reason, n in reasons.items():
        paused.add_metric([reason], n)
    yield paused

    active = list(
        Issue.objects.filter(status__in=[Issue.Status.SENDING, Issue.Status.PAUSED])
        .select_related("newsletter")
        .only("id", "status", "planned_count", "started_at", "heartbeat_at", "newsletter__slug")
    )
    recent = list(
        Issue.objects.filter(started_at__isnull=False)
        .exclude(status__in=[Issue.Status.SENDING, Issue.Status.PAUSED])
        .select_related("newsletter")
        .only("id", "status", "planned_count", "started_at", "heartbeat_at", "newsletter__slug")
        .order_by("-started_at")[: settings.METRICS_RECENT_ISSUES]
    )
    issues = {issue.pk: issue for issue in [*active, *recent]}
    labels = ["issue", "newsletter"]
    deliveries = GaugeMetricFamily(
        "outlet_issue_deliveries",
        "Deliveries of a recent or running issue by status (pending, sending, sent, failed, "
        "skipped).",
        labels=[*labels, "status"],
    )
    planned = GaugeMetricFamily(
        "outlet_issue_planned_deliveries", "Deliveries planned for the issue.", labels=labels
    )
    sending = GaugeMetricFamily(
        "outlet_issue_sending", "1 while the issue is sending, 0 otherwise.", labels=labels
    )
    progress = GaugeMetricFamily(
        "outlet_issue_progress_timestamp_seconds",
        "When a batch last worked on the issue (its heartbeat), Unix time.",
        labels=labels,
    )
    started = GaugeMetricFamily(
        "outlet_issue_started_timestamp_seconds", "When sending started, Unix time.", labels=labels
    )
    from outlet.core.paginators import ESTIMATE_ABOVE

    def deliveries_count(issue_ids: list[int]) -> list[tuple[int, str, int]]:
        rows = (
            Delivery.objects.filter(issue_id__in=issue_ids)
            .values("issue_id", "status")
            .annotate(n=Count("id"))
        )
        return [(row["issue_id"], row["status"], row["n"]) for row in rows]

    counts_by_issue: dict[int, dict[str, int]] = {
        pk: {s.value: 0 for s in Delivery.Status} for pk in issues
    }
    counted = deliveries_count([issue.pk for issue in active]) if active else []
    for issue in recent:
        counted += _shared(
            f"metrics:deliveries:{issue.pk}",
            partial(deliveries_count, [issue.pk]),
            large=issue.planned_count > ESTIMATE_ABOVE,
        )
    for pk, status, n in counted:
        counts_by_issue[pk][status] = n
    for pk, issue in issues.items():
        key = [str(pk), issue.newsletter.slug]
        for status, n in counts_by_issue[pk].items():
            deliveries.add_metric([*key, status], n)
        planned.add_metric(key, issue.planned_count)
        sending.add_metric(key, 1 if issue.status == Issue.Status.SENDING else 0)
        progress.add_metric(key, _timestamp(issue.heartbeat_at))
        started.add_metric(key, _timestamp(issue.started_at))
    yield from (deliveries, planned, sending, progress, started)


def donation_metrics() -> Iterator[Metric]:
    from outlet.donations.models import Donation, DonorEmail

    count = GaugeMetricFamily(
        "outlet_donations", "Donations by status and currency.", labels=["status", "currency"]
    )
    amount = GaugeMetricFamily(
        "outlet_donations_amount_minor_units",
        "Sum of donations' charged amounts by status and currency, in minor units (cents).",
        labels=["status", "currency"],
    )

    def donations_count() -> list[tuple[str, str, int, int]]:
        rows = Donation.objects.values("status", "currency").annotate(
            n=Count("id"), total=Sum("amount")
        )
        return [(row["status"], row["currency"], row["n"], row["total"] or 0) for row in rows]

    for status, currency, n, total in _shared(
        "metrics:donations", donations_count, large=donations_many()
    ):
        count.add_metric([status, currency], n)
        amount.add_metric([status, currency], total)
    yield from (count, amount)

    waiting = GaugeMetricFamily(
        "outlet_donor_emails_waiting",
        "Donor emails (receipts and notices) owed and not sent yet, by kind.",
        labels=["kind"],
    )
    oldest = GaugeMetricFamily(
        "outlet_donor_emails_oldest_waiting_seconds",
        "Age of the oldest donor email owed and not sent yet, by kind (0: none waits).",
        labels=["kind"],
    )
    failed = GaugeMetricFamily(
        "outlet_donor_emails_failed", "Donor emails given up on, by kind.", labels=["kind"]
    )
    rows = {
        (row["status"], row["kind"]): row
        for row in DonorEmail.objects.filter(
            status__in=[DonorEmail.Status.READY, DonorEmail.Status.FAILED]
        )
        .values("status", "kind")
        .annotate(n=Count("id"), first=Min("created_at"))
    }
    now = timezone.now()
    for kind in DonorEmail.Kind.values:
        ready = rows.get((DonorEmail.Status.READY.value, kind))
        waiting.add_metric([kind], ready["n"] if ready else 0)
        oldest.add_metric(
            [kind], (now - ready["first"]).total_seconds() if ready and ready["first"] else 0
        )
        gave_up = rows.get((DonorEmail.Status.FAILED.value, kind))
        failed.add_metric([kind], gave_up["n"] if gave_up else 0)
    yield from (waiting, oldest, failed)


def queue_metrics() -> Iterator[Metric]:
    """Messages waiting in each Celery queue, asked of the broker (Redis, RabbitMQ, the
    embedded filesystem broker alike): `mail` holds receipts and sign-in links, `bulk`
    newsletter batches, `purge` the shared cache's purges."""
    from kombu.exceptions import ChannelError

    from outlet.celery import QUEUES, app

    depth = GaugeMetricFamily(
        "outlet_celery_queue_messages", "Messages waiting in a Celery queue.", labels=["queue"]
    )
    with app.connection_for_read() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=3)
        channel: Any = conn.default_channel  # kombu's virtual and AMQP channels alike
        for queue in QUEUES:
            try:
                depth.add_metric([queue], channel.queue_declare(queue=queue, passive=True)[1])
            except ChannelError:
                depth.add_metric([queue], 0)  # never declared: nothing was ever queued
    yield depth


def heartbeat_metrics() -> Iterator[Metric]:
    from outlet.core.models import Heartbeat

    seen = GaugeMetricFamily(
        "outlet_heartbeat_timestamp_seconds",
        "Last sign of life of beat (its scheduled heartbeat task ran) and of each worker, "
        "Unix time.",
        labels=["component", "name"],
    )
    for component, name, last_seen in Heartbeat.objects.values_list(
        "component", "name", "last_seen"
    ):
        seen.add_metric([component, name], _timestamp(last_seen))
    yield seen


def tracking_metrics() -> Iterator[Metric]:
    from outlet.newsletters.measuring.recording import tracking_buffer_waiting

    waiting = tracking_buffer_waiting()
    if waiting is None:
        return  # no Redis buffer: clicks are written as they come
    yield GaugeMetricFamily(
        "outlet_tracking_buffer_lines",
        "Click and open lines in Redis waiting for the next flush.",
        value=waiting,
    )


def storage_metrics() -> Iterator[Metric]:
    """Free and total bytes of the file systems holding uploads (MEDIA_ROOT), archive
    imports (IMPORTS_ROOT) and the var directory (SQLite, the embedded broker)."""
    import os

    free = GaugeMetricFamily(
        "outlet_storage_free_bytes",
        "Bytes free for this process on the file system holding the storage.",
        labels=["storage"],
    )
    size = GaugeMetricFamily(
        "outlet_storage_size_bytes",
        "Size of the file system holding the storage, in bytes.",
        labels=["storage"],
    )
    for name, path in (
        ("media", settings.MEDIA_ROOT),
        ("imports", settings.IMPORTS_ROOT),
        ("var", settings.VAR_DIR),
    ):
        if not os.path.isdir(path):
            continue
        stats = os.statvfs(path)
        free.add_metric([name], stats.f_bavail * stats.f_frsize)
        size.add_metric([name], stats.f_blocks * stats.f_frsize)
    yield from (free, size)


PARTS: dict[str, Callable[[], Iterator[Metric]]] = {
    "storage": storage_metrics,
    "issues": issue_metrics,
    "donations": donation_metrics,
    "queues": queue_metrics,
    "heartbeats": heartbeat_metrics,
    "tracking": tracking_metrics,
}


class BusinessCollector(Collector):
    """Every part above, each guarded: one that fails is reported, not fatal."""

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "outlet_metrics_part_up", "1 when this part of /metrics was read.", labels=["part"]
        )
        seconds = GaugeMetricFamily(
            "outlet_metrics_part_duration_seconds",
            "How long reading this part of /metrics took.",
            labels=["part"],
        )
        for name, part in PARTS.items():
            started = time.perf_counter()
            try:
                metrics = list(part())
            except Exception:
                logger.exception("metrics: could not read %s", name)
                up.add_metric([name], 0)
            else:
                up.add_metric([name], 1)
                yield from metrics
            seconds.add_metric([name], time.perf_counter() - started)
        yield from (up, seconds)
