"""Counters and histograms of what happens in a process, one place for all of them.

Every process of the stack writes them to PROMETHEUS_MULTIPROC_DIR (outlet/settings/ sets
it before prometheus_client is first imported; the settings are loaded here first for
processes that import this module before Django is set up, such as Celery's).
Callers use the small `*_record` functions, so the names and labels live only here.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Container

from django.conf import settings

settings.METRICS_DIR  # noqa: B018 (loads settings, which name the multiprocess directory)

from prometheus_client import Counter, Gauge, Histogram  # noqa: E402

NEWSLETTER_MESSAGES = Counter(
    "outlet_newsletter_messages_total",
    "Newsletter messages by outcome: sent (accepted by the server), deferred (to be "
    "tried again), bounced (refused for good), skipped (reader no longer mailable).",
    ["outcome"],
)
STRIPE_WEBHOOKS = Counter(
    "outlet_stripe_webhooks_total",
    "Stripe webhook deliveries by event type and outcome: applied, repeat, ignored, "
    "rejected (bad signature or payload), deferred (Stripe unreachable: answered 503), "
    "error (an exception: answered 500).",
    ["type", "outcome"],
)
STRIPE_WEBHOOK_LAST = Gauge(
    "outlet_stripe_webhook_last_timestamp_seconds",
    "When a webhook last ended with this outcome (Unix time).",
    ["outcome"],
    multiprocess_mode="max",
)
TRACKING_LINES = Counter(
    "outlet_tracking_lines_total",
    "Click and open lines: buffered (answered, waiting in memory), dropped (lost while "
    "Redis was away), written (stored by a flush).",
    ["outcome"],
)
CELERY_TASKS = Counter(
    "outlet_celery_tasks_total",
    "Celery tasks finished, by task name and state (succeeded, failed, retried).",
    ["task", "state"],
)
CELERY_TASK_SECONDS = Histogram(
    "outlet_celery_task_duration_seconds",
    "How long Celery tasks ran, by task name.",
    ["task"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
)

#: Stripe event types are many and new ones appear; a label takes only those we handle.
WEBHOOK_TYPE_OTHER = "other"


def newsletter_messages_record(*, sent: int, deferred: int, bounced: int, skipped: int) -> None:
    for outcome, count in (
        ("sent", sent),
        ("deferred", deferred),
        ("bounced", bounced),
        ("skipped", skipped),
    ):
        if count:
            NEWSLETTER_MESSAGES.labels(outcome).inc(count)


def stripe_webhook_record(*, event_type: str, outcome: str, known_types: Container[str]) -> None:
    """One webhook delivery's outcome; `known_types` bounds the type label."""
    label = event_type if event_type in known_types else WEBHOOK_TYPE_OTHER
    STRIPE_WEBHOOKS.labels(label, outcome).inc()
    STRIPE_WEBHOOK_LAST.labels(outcome).set(time.time())


def tracking_lines_record(*, outcome: str, count: int = 1) -> None:
    if count:
        TRACKING_LINES.labels(outcome).inc(count)


def celery_task_record(*, task: str, state: str, seconds: float | None = None) -> None:
    CELERY_TASKS.labels(task, state).inc()
    if seconds is not None:
        CELERY_TASK_SECONDS.labels(task).observe(seconds)


DB_QUERY_SECONDS = Histogram(
    "outlet_db_query_duration_seconds",
    "How long database statements took, by database vendor.",
    ["vendor"],
    buckets=(
        _DB_BUCKETS := (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)
    ),
)
DB_QUERY_ERRORS = Counter(
    "outlet_db_query_errors_total", "Database statements that raised, by vendor.", ["vendor"]
)


class _StatementTally:
    """One thread's statement timings not yet written to the shared files.

    In multiprocess mode each observation is a locked write to a memory-mapped file
    (about 2-15 µs); a webhook runs a dozen statements. Kept here per thread and
    written in one go (one write per bucket used) when the request or task ends, or
    every FLUSH_EVERY statements for long-running work such as a command."""

    FLUSH_EVERY = 64

    def __init__(self) -> None:
        self.buckets: dict[str, list[int]] = {}
        self.seconds: dict[str, float] = {}
        self.errors: dict[str, int] = {}
        self.pending = 0

    def add(self, vendor: str, seconds: float, *, failed: bool) -> None:
        counts = self.buckets.get(vendor)
        if counts is None:
            counts = self.buckets[vendor] = [0] * len(_DB_BOUNDS)
        counts[bisect_left(_DB_BOUNDS, seconds)] += 1
        self.seconds[vendor] = self.seconds.get(vendor, 0.0) + seconds
        if failed:
            self.errors[vendor] = self.errors.get(vendor, 0) + 1
        self.pending += 1
        if self.pending >= self.FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        for vendor, counts in self.buckets.items():
            histogram = DB_QUERY_SECONDS.labels(vendor)
            # prometheus-client keeps a histogram as its sum and one counter per bucket
            # (observe() adds to the first bucket whose bound holds the value).
            histogram._sum.inc(self.seconds[vendor])
            for bucket, count in zip(histogram._buckets, counts, strict=True):
                if count:
                    bucket.inc(count)
        for vendor, errors in self.errors.items():
            DB_QUERY_ERRORS.labels(vendor).inc(errors)
        self.buckets.clear()
        self.seconds.clear()
        self.errors.clear()
        self.pending = 0


_DB_BOUNDS = (*_DB_BUCKETS, float("inf"))
_tallies = threading.local()


def _tally() -> _StatementTally:
    tally = getattr(_tallies, "tally", None)
    if tally is None:
        tally = _tallies.tally = _StatementTally()
    return tally


def db_timings_flush() -> None:
    """Write this thread's statement timings (called as each request and task ends)."""
    tally = getattr(_tallies, "tally", None)
    if tally is not None:
        tally.flush()


def _db_timer(vendor: str):
    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        failed = True
        try:
            result = execute(sql, params, many, context)
            failed = False
            return result
        finally:
            _tally().add(vendor, time.perf_counter() - started, failed=failed)

    return timed


def db_timer_install(*, sender=None, connection=None, **_) -> None:
    """Receiver of `connection_created`: time every statement on the new connection
    (Django's execute wrappers; no database engine of our own to keep in step)."""
    if connection is not None and not getattr(connection, "_outlet_timed", False):
        connection.execute_wrappers.append(_db_timer(connection.vendor))
        connection._outlet_timed = True


HTTP_REQUEST_SECONDS = Histogram(
    "outlet_http_request_duration_seconds",
    "How long Django took to answer, by URL pattern name and method.",
    ["view", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
HTTP_RESPONSES = Counter(
    "outlet_http_responses_total",
    "Responses by URL pattern name, method and status code.",
    ["view", "method", "status"],
)
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def http_request_record(*, view: str, method: str, status: int, seconds: float) -> None:
    method = method if method in _METHODS else "other"
    HTTP_REQUEST_SECONDS.labels(view, method).observe(seconds)
    HTTP_RESPONSES.labels(view, method, str(status)).inc()
