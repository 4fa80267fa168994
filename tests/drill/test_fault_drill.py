"""The fault drill (`make drill`): real Celery workers on PostgreSQL + Redis sending to
Postfix's real `smtp-sink` switched into a fault, or through anymail's Mailgun backend
to a local Mailgun-shaped endpoint that fails. Each case records what readers got into
DRILL_REPORT (lost, duplicates, wrongly suppressed, wrong body); benchmarks/drill.py
runs them and prints the last line. Skipped unless DRILL_REPORT is set.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from outlet.celery import app
from outlet.newsletters.issues import issue_resume, issue_send_now, issues_tick
from outlet.newsletters.models import Delivery, Issue, Subscriber, Suppression
from tests.conftest import WorkerProcess, free_port
from tests.factories import IssueFactory, NewsletterFactory
from tests.newsletters.bulk import subscribers_bulk_create
from tests.newsletters.esp_endpoint import MailgunEndpoint

REPORT = os.environ.get("DRILL_REPORT", "")
SMTP_SINK = "/usr/sbin/smtp-sink"

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not REPORT, reason="run by `make drill`"),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the drill needs PostgreSQL"),
]

READERS = 300
FAST = {
    "NEWSLETTER_BATCH_SIZE": "50",
    "NEWSLETTER_SEND_LANES": "2",
    "NEWSLETTER_RETRY_SECONDS": "1",
    "NEWSLETTER_SMTP_DOWN_RETRY_SECONDS": "1",
    "NEWSLETTER_LEASE_SECONDS": "6",
}


def record(case: str, **counts: int) -> None:
    with open(REPORT, "a") as handle:
        handle.write(json.dumps({"case": case, **counts}) + "\n")


class PostfixSink:
    """Postfix's smtp-sink on a free port, its fault switches as arguments; every
    accepted message is appended to one dump file."""

    def __init__(self, dump: Path, *flags: str, port: int | None = None) -> None:
        if not Path(SMTP_SINK).exists():
            pytest.fail("smtp-sink is missing: apt-get install postfix (make drill does it)")
        self.port = port or free_port()
        self.dump = dump
        dump.parent.mkdir(parents=True, exist_ok=True)
        dump.parent.chmod(0o777)
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        self.process = subprocess.Popen(
            [SMTP_SINK, *user, "-D", str(dump), *flags, f"127.0.0.1:{self.port}", "64"],
            start_new_session=True,
        )
        time.sleep(0.3)

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=10)

    def messages(self) -> list[bytes]:
        if not self.dump.exists():
            return []
        data = self.dump.read_bytes()
        return [part for part in re.split(rb"(?m)^(?=X-Client-Addr: )", data) if part.strip()]


_DELIVERY = re.compile(rb"Message-ID: <issue-(\d+)\.delivery-(\d+)@", re.IGNORECASE)


def received(sink: PostfixSink) -> Counter:
    found: Counter = Counter()
    for message in sink.messages():
        for match in _DELIVERY.finditer(message):
            found[(int(match.group(1)), int(match.group(2)))] += 1
    return found


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def status(issue) -> str:
    return Issue.objects.get(pk=issue.pk).status


def outcome(issue, counts: Counter) -> dict[str, int]:
    delivery_ids = set(Delivery.objects.filter(issue=issue).values_list("pk", flat=True))
    got = {delivery: n for (issue_id, delivery), n in counts.items() if issue_id == issue.pk}
    return {
        "lost": len(delivery_ids - set(got)),
        "duplicates": sum(n - 1 for n in got.values()),
    }


def wrongly_suppressed() -> int:
    return (
        Suppression.objects.count()
        + Subscriber.objects.exclude(status=Subscriber.Status.ACTIVE).count()
    )


@pytest.fixture
def dump_dir(settings):
    """Under var/: smtp-sink runs as nobody when started by root and must write here."""
    import uuid

    directory = Path(settings.VAR_DIR) / "drill" / uuid.uuid4().hex[:8]
    directory.mkdir(parents=True, exist_ok=True)
    for path in (directory, directory.parent, Path(settings.VAR_DIR)):
        path.chmod(0o777)
    return directory


def refusing_server_case(case: str, dump_dir: Path, *flags: str) -> None:
    app.control.purge()
    newsletter = NewsletterFactory()
    subscribers_bulk_create(newsletter=newsletter, count=READERS)
    issue = IssueFactory(newsletter=newsletter)
    sink = PostfixSink(dump_dir / "refusing", *flags)
    env = {**FAST, "EMAIL_URL": f"smtp://127.0.0.1:{sink.port}"}
    worker = WorkerProcess(extra_env=env)
    try:
        worker.wait_ready()
        issue_send_now(issue=issue)
        wait_until(lambda: status(issue) == Issue.Status.PAUSED, 60, "the issue to pause")
        reason = Issue.objects.get(pk=issue.pk).pause_reason
        assert "5.7.1" in reason, reason
        suppressed = wrongly_suppressed()
        failed = Delivery.objects.filter(issue=issue, status=Delivery.Status.FAILED).count()
        sink.stop()
        sink = PostfixSink(dump_dir / "working", port=sink.port)
        issue_resume(issue=issue)
        wait_until(lambda: status(issue) == Issue.Status.SENT, 90, "the issue to be sent")
        counts = outcome(issue, received(sink))
    finally:
        worker.stop()
        sink.stop()
    record(case, **counts, wrongly_suppressed=suppressed + failed, wrong_body=0)
    assert suppressed == failed == 0
    assert counts == {"lost": 0, "duplicates": 0}


def test_case_1_relay_denied_at_every_rcpt(dump_dir):
    refusing_server_case(
        "1 relay denied", dump_dir, "-f", "RCPT", "-B", "554 5.7.1 Relay access denied"
    )


def test_case_2a_sender_refused_at_mail_from(dump_dir):
    refusing_server_case(
        "2 sender refused", dump_dir, "-f", "MAIL", "-B", "553 5.7.1 Sender address rejected"
    )


def test_case_2b_refused_after_data(dump_dir):
    refusing_server_case(
        "2 refused after DATA", dump_dir, "-f", ".", "-B", "554 5.7.1 Message refused"
    )


def test_case_3_soft_refusals_then_delivery(dump_dir):
    app.control.purge()
    newsletter = NewsletterFactory()
    subscribers_bulk_create(newsletter=newsletter, count=READERS)
    issue = IssueFactory(newsletter=newsletter)
    sink = PostfixSink(dump_dir / "soft", "-r", "RCPT")
    env = {**FAST, "EMAIL_URL": f"smtp://127.0.0.1:{sink.port}"}
    worker = WorkerProcess(extra_env=env)
    try:
        worker.wait_ready()
        issue_send_now(issue=issue)
        wait_until(
            lambda: Delivery.objects.filter(issue=issue, error__startswith="450").exists(),
            60,
            "soft refusals",
        )
        sink.stop()
        sink = PostfixSink(dump_dir / "working", port=sink.port)
        wait_until(lambda: status(issue) == Issue.Status.SENT, 120, "the issue to be sent")
        counts = outcome(issue, received(sink))
    finally:
        worker.stop()
        sink.stop()
    record("3 4xx then delivered", **counts, wrongly_suppressed=wrongly_suppressed(), wrong_body=0)
    assert counts == {"lost": 0, "duplicates": 0}
    assert wrongly_suppressed() == 0


def test_case_6_esp_outage_pauses_and_resumes_by_itself(settings):
    app.control.purge()
    newsletter = NewsletterFactory()
    emails = subscribers_bulk_create(newsletter=newsletter, count=READERS)
    issue = IssueFactory(newsletter=newsletter)
    endpoint = MailgunEndpoint()
    endpoint.failing = True
    env = {
        **FAST,
        "EMAIL_BACKEND": "anymail.backends.mailgun.EmailBackend",
        "ANYMAIL_MAILGUN_API_KEY": "key-drill",
        "ANYMAIL_MAILGUN_API_URL": endpoint.api_url,
        "NEWSLETTER_ESP_BATCH_SIZE": "25",
    }
    # This process plays beat: the tick, with its clock moved past each retry time.
    settings.EMAIL_BACKEND = env["EMAIL_BACKEND"]
    settings.ANYMAIL = {"MAILGUN_API_KEY": "key-drill", "MAILGUN_API_URL": endpoint.api_url}

    def tick_until(condition, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            issues_tick(now=timezone.now() + timedelta(seconds=120))
            if condition():
                return True
            time.sleep(0.5)
        return False

    worker = WorkerProcess(extra_env=env)
    try:
        worker.wait_ready()
        issue_send_now(issue=issue)
        wait_until(lambda: status(issue) == Issue.Status.PAUSED, 60, "the issue to pause")
        # The outage goes on (20 minutes in production: each tick finds the ESP down).
        assert not tick_until(lambda: status(issue) != Issue.Status.PAUSED, 3)
        endpoint.failing = False
        assert tick_until(lambda: status(issue) == Issue.Status.SENT, 120), "not sent"
        got = endpoint.per_recipient()
    finally:
        worker.stop()
        endpoint.stop()
    failed = Delivery.objects.filter(issue=issue, status=Delivery.Status.FAILED).count()
    lost = len(set(emails) - set(got))
    duplicates = sum(n - 1 for n in got.values())
    record("6 ESP outage", lost=lost, duplicates=duplicates,
           wrongly_suppressed=failed + wrongly_suppressed(), wrong_body=0)  # fmt: skip
    assert lost == duplicates == failed == 0
