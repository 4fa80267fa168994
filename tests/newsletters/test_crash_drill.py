"""The crash drill: two real workers, one killed with SIGKILL mid-send, a new one started.

Every subscriber must receive the issue, duplicates may not exceed the number
of SMTP connections that died with the worker, and the issue must end as sent.
It needs PostgreSQL (SKIP LOCKED claims by separate processes) and a real
broker, so it runs in CI's PostgreSQL + Redis pass.
"""

from __future__ import annotations

import time

import pytest
from django.db import connection

from outlet.celery import app
from outlet.newsletters.issues import issue_send_now
from outlet.newsletters.models import Delivery, Issue
from tests.conftest import WorkerProcess
from tests.factories import IssueFactory, NewsletterFactory
from tests.newsletters.bulk import subscribers_bulk_create
from tests.newsletters.smtp_sinks import CountingSmtpSink

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="the crash drill needs PostgreSQL and Redis (CI's second run): SQLite "
        "serialises every writer, so it cannot show concurrent claims surviving a kill",
    ),
]

SUBSCRIBERS = 5000
LEASE_SECONDS = 4


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_killed_worker_loses_no_subscriber_and_duplicates_stay_bounded():
    sink = CountingSmtpSink()
    env = {
        "EMAIL_URL": sink.url,
        "NEWSLETTER_LEASE_SECONDS": str(LEASE_SECONDS),
        "NEWSLETTER_BATCH_SIZE": "100",
        "NEWSLETTER_SEND_LANES": "4",
    }
    app.control.purge()
    newsletter = NewsletterFactory()
    emails = subscribers_bulk_create(newsletter=newsletter, count=SUBSCRIBERS)
    issue = IssueFactory(newsletter=newsletter)
    workers = [WorkerProcess(extra_env=env), WorkerProcess(extra_env=env)]
    try:
        for worker in workers:
            worker.wait_ready()
        started = time.monotonic()

        issue_send_now(issue=issue)
        wait_until(lambda: sink.count() >= SUBSCRIBERS // 4, 60, "the send to get going")
        victim = workers[0]
        victim.kill(9)  # parent and its one pool process: one SMTP connection dies
        victim.process.wait(timeout=10)
        killed_connections = 1
        at_kill = sink.count()
        workers.append(WorkerProcess(extra_env=env))
        workers[-1].wait_ready()

        wait_until(
            lambda: Issue.objects.get(pk=issue.pk).status == Issue.Status.SENT,
            90,
            "the issue to be sent",
        )
        elapsed = time.monotonic() - started
    finally:
        for worker in workers:
            worker.stop()
        sink.stop()

    received = sink.per_recipient()
    duplicates = sum(count - 1 for count in received.values())
    print(
        f"crash drill: n={SUBSCRIBERS} killed at {at_kill} received={sum(received.values())} "
        f"duplicates={duplicates} elapsed={elapsed:.1f}s"
    )
    assert at_kill < SUBSCRIBERS, "the worker was killed after the send had finished"
    assert set(received) == set(emails)
    assert duplicates <= killed_connections
    assert Delivery.objects.filter(issue=issue, status=Delivery.Status.SENT).count() == SUBSCRIBERS
