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


def tick_until(condition, seconds: float) -> bool:
    """Play beat from this process: the tick, its clock moved past every retry time."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        issues_tick(now=timezone.now() + timedelta(seconds=120))
        if condition():
            return True
        time.sleep(0.5)
    return False


def smtp_settings(settings, sink: PostfixSink) -> dict[str, str]:
    """The workers' and this process's mail settings (the tick asks the server)."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
    return {**FAST, "EMAIL_URL": f"smtp://127.0.0.1:{sink.port}"}


def readers_and_issue(count: int = READERS, **issue_fields):
    app.control.purge()
    newsletter = NewsletterFactory()
    emails = subscribers_bulk_create(
        newsletter=newsletter, count=count, prefix=f"n{newsletter.pk}r"
    )
    return emails, IssueFactory(newsletter=newsletter, **issue_fields)


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


def test_case_1b_every_mailbox_unknown_trips_the_bounce_breaker(dump_dir):
    """A relay answering 550 5.1.1 to everyone: the breaker pauses the issue, nobody is
    suppressed; the editor lifts the held bounces and, the relay fixed, everyone is mailed."""
    from outlet.newsletters.sending.breaker import issue_held_bounces_lift

    app.control.purge()
    newsletter = NewsletterFactory()
    subscribers_bulk_create(newsletter=newsletter, count=READERS)
    issue = IssueFactory(newsletter=newsletter)
    sink = PostfixSink(
        dump_dir / "unknown", "-f", "RCPT", "-B", "550 5.1.1 Recipient address rejected"
    )
    worker = WorkerProcess(extra_env={**FAST, "EMAIL_URL": f"smtp://127.0.0.1:{sink.port}"})
    try:
        worker.wait_ready()
        issue_send_now(issue=issue)
        wait_until(lambda: status(issue) == Issue.Status.PAUSED, 60, "the breaker to trip")
        reason = Issue.objects.get(pk=issue.pk).pause_reason
        assert "bounce breaker" in reason, reason
        # The lanes finish the batch in hand: wait until no row is leased any more.
        wait_until(
            lambda: (
                not Delivery.objects.filter(issue=issue, status=Delivery.Status.SENDING).exists()
            ),
            30,
            "the lanes to stop",
        )
        suppressed = wrongly_suppressed()
        sink.stop()
        sink = PostfixSink(dump_dir / "working", port=sink.port)
        assert issue_held_bounces_lift(issue=issue) > 0
        issue_resume(issue=Issue.objects.get(pk=issue.pk))
        wait_until(lambda: status(issue) == Issue.Status.SENT, 90, "the issue to be sent")
        counts = outcome(issue, received(sink))
    finally:
        worker.stop()
        sink.stop()
    record("1b every mailbox unknown", **counts, wrongly_suppressed=suppressed, wrong_body=0)
    assert suppressed == 0
    assert counts == {"lost": 0, "duplicates": 0}


def test_case_2a_sender_refused_at_mail_from(dump_dir):
    refusing_server_case(
        "2 sender refused", dump_dir, "-f", "MAIL", "-B", "553 5.7.1 Sender address rejected"
    )


def test_case_2b_refused_after_data(dump_dir):
    refusing_server_case(
        "2 refused after DATA", dump_dir, "-f", ".", "-B", "554 5.7.1 Message refused"
    )


def test_case_3_deferrals_and_421_disconnects_then_delivery(dump_dir, settings):
    """450 at every RCPT, then 421 and disconnect at every RCPT, then a working server:
    the issue pauses and resumes by itself; nobody spends attempts, fails or is
    suppressed; everyone gets one copy."""
    _, issue = readers_and_issue()
    sink = PostfixSink(dump_dir / "deferring", "-r", "RCPT")
    env = smtp_settings(settings, sink)
    worker = WorkerProcess(extra_env=env)
    try:
        worker.wait_ready()
        issue_send_now(issue=issue)
        wait_until(lambda: status(issue) == Issue.Status.PAUSED, 60, "the issue to pause")
        assert "450" in Issue.objects.get(pk=issue.pk).pause_reason
        tick_until(lambda: False, 3)  # resumes, meets the deferrals again, pauses again
        sink.stop()
        sink = PostfixSink(dump_dir / "dropping", "-Q", "RCPT", port=sink.port)
        tick_until(lambda: False, 4)
        sink.stop()
        sink = PostfixSink(dump_dir / "working", port=sink.port)
        assert tick_until(lambda: status(issue) == Issue.Status.SENT, 120), "not sent"
        counts = outcome(issue, received(sink))
    finally:
        worker.stop()
        sink.stop()
    failed = Delivery.objects.filter(issue=issue, status=Delivery.Status.FAILED).count()
    record("3 450s and 421 disconnects", **counts,
           wrongly_suppressed=failed + wrongly_suppressed(), wrong_body=0)  # fmt: skip
    assert counts == {"lost": 0, "duplicates": 0}
    assert failed == wrongly_suppressed() == 0


def test_case_4_disconnect_during_data_and_sigkill_20000_in(dump_dir, settings):
    """Disconnects after the message's content (no reply) for a while, then a working
    server and a worker killed with SIGKILL 5,000 recipients into a 20,000 send."""
    total = 20_000
    _, issue = readers_and_issue(total)
    sink = PostfixSink(dump_dir / "dropping", "-q", ".")
    env = {**smtp_settings(settings, sink), "NEWSLETTER_BATCH_SIZE": "200",
           "NEWSLETTER_LEASE_SECONDS": "5"}  # fmt: skip
    workers = [WorkerProcess(extra_env=env), WorkerProcess(extra_env=env)]
    dead_connections = 0
    try:
        for worker in workers:
            worker.wait_ready()
        issue_send_now(issue=issue)
        wait_until(lambda: status(issue) == Issue.Status.PAUSED, 60, "the issue to pause")
        dead_connections += Delivery.objects.filter(
            issue=issue, error__startswith="connection lost"
        ).count()
        dropped = sink
        dropped.stop()
        sink = PostfixSink(dump_dir / "working", port=dropped.port)
        assert tick_until(lambda: len(received(sink)) >= 5000, 120), "the send did not resume"
        workers[0].kill(9)
        workers[0].process.wait(timeout=10)
        dead_connections += 1
        workers.append(WorkerProcess(extra_env=env))
        workers[-1].wait_ready()
        assert tick_until(lambda: status(issue) == Issue.Status.SENT, 240), "not sent"
        counts = outcome(issue, received(sink) + received(dropped))
    finally:
        for worker in workers:
            worker.stop()
        sink.stop()
    record("4 DATA disconnects + SIGKILL at 5,000 of 20,000", **counts,
           wrongly_suppressed=wrongly_suppressed(), wrong_body=0)  # fmt: skip
    assert counts["lost"] == 0
    assert counts["duplicates"] <= dead_connections
    assert wrongly_suppressed() == 0


def test_case_5_server_slower_than_the_lease(dump_dir, settings):
    """Each message takes longer than the lease: a worker that lost its lease stops
    before another message, so a copy goes twice only when a message in flight
    outlived the lease (at most one per connection)."""
    _, issue = readers_and_issue(4)
    sink = PostfixSink(dump_dir / "slow", "-W", ".:3")
    env = {**smtp_settings(settings, sink), "NEWSLETTER_LEASE_SECONDS": "2",
           "NEWSLETTER_SEND_LANES": "2"}  # fmt: skip
    workers = [WorkerProcess(extra_env=env), WorkerProcess(extra_env=env)]
    try:
        for worker in workers:
            worker.wait_ready()
        issue_send_now(issue=issue)
        wait_until(lambda: status(issue) == Issue.Status.SENT, 180, "the issue to be sent")
        counts = outcome(issue, received(sink))
    finally:
        for worker in workers:
            worker.stop()
        sink.stop()
    claims = sum(Delivery.objects.filter(issue=issue).values_list("attempts", flat=True))
    record("5 slower than the lease", **counts, wrongly_suppressed=wrongly_suppressed(),
           wrong_body=0)  # fmt: skip
    assert counts["lost"] == 0
    # Every extra copy needs a claim that took a row over from a worker that lost it.
    assert counts["duplicates"] <= claims - 4


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


def _bodies_right(subject: str, text: str, expected: dict[str, str]) -> bool:
    marker = expected.get(subject)
    return (
        marker is not None
        and marker in text
        and all(other not in text for other in expected.values() if other != marker)
    )


def test_case_7_two_issues_at_once_on_one_worker_over_smtp_and_the_esp(dump_dir, settings):
    from outlet.newsletters.models import Segment

    emails_a, first = readers_and_issue(150, subject="Morning edition", body="<p>BODY-MORNING</p>")
    emails_b, second = readers_and_issue(
        150, subject="Weekend edition", body="<p>BODY-WEEKEND</p>", segment=Segment.RECENT
    )
    expected = {"Morning edition": "BODY-MORNING", "Weekend edition": "BODY-WEEKEND"}
    sink = PostfixSink(dump_dir / "two")
    env = {**smtp_settings(settings, sink), "NEWSLETTER_BATCH_SIZE": "10"}
    worker = WorkerProcess(extra_env=env)
    try:
        worker.wait_ready()
        issue_send_now(issue=first)
        issue_send_now(issue=second)
        for issue in (first, second):
            wait_until(lambda issue=issue: status(issue) == Issue.Status.SENT, 120, "sent")
        messages = sink.messages()
        counts = received(sink)
    finally:
        worker.stop()
        sink.stop()
    wrong = 0
    for message in messages:
        subject = re.search(rb"^Subject: (.*)$", message, re.MULTILINE).group(1).decode().strip()
        if not _bodies_right(subject, message.decode(errors="replace"), expected):
            wrong += 1
    lost = sum(outcome(issue, counts)["lost"] for issue in (first, second))
    duplicates = sum(outcome(issue, counts)["duplicates"] for issue in (first, second))

    # The same through the ESP path: anymail's Mailgun backend, one worker process.
    endpoint = MailgunEndpoint()
    _, third = readers_and_issue(150, subject="Morning edition", body="<p>BODY-MORNING</p>")
    _, fourth = readers_and_issue(
        150, subject="Weekend edition", body="<p>BODY-WEEKEND</p>", segment=Segment.RECENT
    )
    env = {**FAST, "EMAIL_BACKEND": "anymail.backends.mailgun.EmailBackend",
           "ANYMAIL_MAILGUN_API_KEY": "key-drill", "ANYMAIL_MAILGUN_API_URL": endpoint.api_url,
           "NEWSLETTER_BATCH_SIZE": "10", "NEWSLETTER_ESP_BATCH_SIZE": "5"}  # fmt: skip
    worker = WorkerProcess(extra_env=env)
    try:
        worker.wait_ready()
        issue_send_now(issue=third)
        issue_send_now(issue=fourth)
        for issue in (third, fourth):
            wait_until(lambda issue=issue: status(issue) == Issue.Status.SENT, 120, "sent")
    finally:
        worker.stop()
        endpoint.stop()
    for _address, subject, text, html in endpoint.copies:
        if not (_bodies_right(subject, text, expected) and _bodies_right(subject, html, expected)):
            wrong += 1
    got = endpoint.per_recipient()
    lost += 300 - len(got)
    duplicates += sum(n - 1 for n in got.values())
    record("7 two issues on one worker, SMTP and ESP", lost=lost, duplicates=duplicates,
           wrongly_suppressed=wrongly_suppressed(), wrong_body=wrong)  # fmt: skip
    assert wrong == lost == duplicates == 0
    assert len(messages) == 300


def test_case_8_unsubscribe_mid_send(dump_dir, settings):
    from outlet.newsletters.services import subscriber_unsubscribe

    emails, issue = readers_and_issue(100)
    sink = PostfixSink(dump_dir / "unsubscribe")
    env = {**smtp_settings(settings, sink), "NEWSLETTER_RATE_LIMIT_PER_SECOND": "25",
           "NEWSLETTER_SEND_LANES": "1", "NEWSLETTER_BATCH_SIZE": "100"}  # fmt: skip
    worker = WorkerProcess(extra_env=env)
    leaving = emails[60:70]
    try:
        worker.wait_ready()
        issue_send_now(issue=issue)
        wait_until(lambda: len(received(sink)) >= 20, 60, "the send to get going")
        for subscriber in Subscriber.objects.filter(email__in=leaving):
            subscriber_unsubscribe(subscriber=subscriber)
        wait_until(lambda: status(issue) == Issue.Status.SENT, 120, "the issue to be sent")
        messages = sink.messages()
        counts = outcome(issue, received(sink))
    finally:
        worker.stop()
        sink.stop()
    mailed_after = sum(
        1 for message in messages for address in leaving if f"<{address}>".encode() in message
    )
    skipped = Delivery.objects.filter(issue=issue, status=Delivery.Status.SKIPPED).count()
    # The ten who left are unsubscribed by choice; anybody else not active, any
    # suppression or failed delivery is wrong.
    wrong = (
        Suppression.objects.count()
        + Subscriber.objects.exclude(status=Subscriber.Status.ACTIVE)
        .exclude(email__in=leaving)
        .count()
        + Delivery.objects.filter(issue=issue, status=Delivery.Status.FAILED).count()
    )
    record("8 unsubscribe mid-send", lost=counts["lost"] - skipped,
           duplicates=counts["duplicates"], wrongly_suppressed=wrong, wrong_body=0)  # fmt: skip
    assert mailed_after <= 1  # the message in flight at most
    assert counts["lost"] - skipped == 0
    assert wrong == 0
