"""Receipts and confirmations ("mail" queue) never wait behind a newsletter ("bulk")."""

from __future__ import annotations

import time

import pytest

from outlet.celery import app
from outlet.core.models import Heartbeat
from outlet.newsletters.issues import issue_send_now
from outlet.newsletters.models import Delivery, Issue
from outlet.newsletters.tasks import issue_batch_send_task
from tests.conftest import WorkerProcess
from tests.factories import IssueFactory, NewsletterFactory
from tests.newsletters.bulk import subscribers_bulk_create
from tests.newsletters.smtp_sinks import CountingSmtpSink

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_mail_task_runs_promptly_while_a_big_bulk_backlog_is_queued():
    """One worker, one process, consuming both queues: the worst case for a receipt.

    The bulk queue holds a send plus a backlog of extra batch tasks; a task put
    on the mail queue afterwards must still run within a couple of batches,
    because the worker takes from its queues in turn rather than draining bulk.
    """
    sink = CountingSmtpSink()
    app.control.purge()
    newsletter = NewsletterFactory()
    subscribers_bulk_create(newsletter=newsletter, count=3000)
    issue = IssueFactory(newsletter=newsletter)
    env = {"EMAIL_URL": sink.url, "NEWSLETTER_BATCH_SIZE": "50", "NEWSLETTER_SEND_LANES": "2"}
    worker = WorkerProcess(queues="mail,bulk", extra_env=env)
    try:
        worker.wait_ready()
        Heartbeat.objects.filter(component=Heartbeat.Component.BEAT).delete()
        issue_send_now(issue=issue)
        for lane in range(2, 60):  # a backlog on the bulk queue
            issue_batch_send_task.delay(issue.pk, lane)
        deadline = time.monotonic() + 30
        while sink.count() < 200 and time.monotonic() < deadline:
            time.sleep(0.05)

        queued_at = time.monotonic()
        app.send_task("core.beat_heartbeat", queue="mail", routing_key="mail")
        while not Heartbeat.objects.filter(component=Heartbeat.Component.BEAT).exists():
            assert time.monotonic() - queued_at < 15, "the mail task is stuck behind the bulk send"
            time.sleep(0.05)
        waited = time.monotonic() - queued_at
        remaining = Delivery.objects.filter(
            issue=issue, status__in=[Delivery.Status.PENDING, Delivery.Status.SENDING]
        ).count()
        status = Issue.objects.get(pk=issue.pk).status
    finally:
        worker.stop()
        sink.stop()

    assert status == Issue.Status.SENDING and remaining > 0, "the send was over too soon"
    assert waited < 5
