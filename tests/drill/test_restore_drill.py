"""The restore drill (`make drill-restore`): back up a working stack, restore it into a fresh
database, and prove nothing was lost.

The "old" site: PostgreSQL (pytest's test database), real Celery worker processes on Redis,
the web site (live_server) with localstripe's webhooks pointed at it, Postfix's smtp-sink
recording every message it accepts. It has subscribers, an issue being sent, donations
paid and donations pending. `backup_create` runs while the send is under way; the old site
then finishes its send and takes payments for pending donations (webhooks after the dump).

The "new" site: a fresh database (RESTORE_DATABASE_URL, else the test database's name +
`_restored`), `manage.py restore` (verify, decrypt, pg_restore, row counts, media, Stripe
replay from localstripe's /v1/events through the gateway), then a new worker and beat: the
tick revives the half-sent issue and it finishes. Checked: every subscriber got the issue;
every repeat is a delivery the old site had handed to the SMTP server after the dump's
snapshot (the restored database cannot know of it: duplicates=… counts them); the
post-dump payments are paid after the replay; GET / answers 200 on the restored site.

Skipped unless DRILL_RESTORE_REPORT is set (benchmarks/drill_restore.py sets it and prints
the last line).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import requests
from django.db import connection

from outlet.celery import app
from outlet.core.backups.create import backup_create
from outlet.donations import stripe_gateway
from outlet.donations.models import Donation
from outlet.newsletters.issues import issue_send_now
from outlet.newsletters.models import Delivery, Issue
from tests.conftest import BASE_DIR, WorkerProcess, free_port, wait_for_port
from tests.conftest import test_database_url as database_url_of_tests
from tests.drill.test_fault_drill import PostfixSink, received, wait_until
from tests.factories import DonationFactory, IssueFactory, NewsletterFactory
from tests.newsletters.bulk import subscribers_bulk_create

REPORT = os.environ.get("DRILL_RESTORE_REPORT", "")

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not REPORT, reason="run by `make drill-restore`"),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the drill needs PostgreSQL"),
]

READERS = 1000
PAID_BEFORE, PAID_AFTER, STILL_PENDING = 3, 4, 2
FAST = {
    "NEWSLETTER_BATCH_SIZE": "25",
    "NEWSLETTER_SEND_LANES": "2",
    "NEWSLETTER_RETRY_SECONDS": "1",
    "NEWSLETTER_LEASE_SECONDS": "4",
    "NEWSLETTER_TICK_SECONDS": "1",
}


def restore_database_url() -> str:
    explicit = os.environ.get("RESTORE_DATABASE_URL", "")
    if explicit:
        return explicit
    parts = urlsplit(database_url_of_tests())
    return urlunsplit(parts._replace(path=parts.path + "_restored"))


def database_recreate(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as admin_connection:
        admin_connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin_connection.execute(f'CREATE DATABASE "{name}"')


def query(url: str, sql: str, *params: object) -> list[tuple]:
    with psycopg.connect(url) as db:
        return db.execute(sql, params).fetchall()


class Card:
    """A localstripe customer with a card, for PaymentIntents created through the gateway
    (the card is made directly at localstripe: in production the browser makes it)."""

    def __init__(self, api: str) -> None:
        self.customer = stripe_gateway.customer_create(
            email="donor@example.com", name="Drill Donor", idempotency_key="drill-customer"
        )["id"]
        auth = {"Authorization": "Bearer sk_test_outlet_localstripe"}
        made = requests.post(
            f"{api}/v1/payment_methods",
            data={
                "type": "card",
                "card[number]": "4242424242424242",
                "card[exp_month]": "12",
                "card[exp_year]": "2034",
                "card[cvc]": "123",
            },
            headers=auth,
            timeout=10,
        )
        made.raise_for_status()
        self.payment_method = made.json()["id"]
        self.api, self.auth = api, auth
        requests.post(
            f"{api}/v1/payment_methods/{self.payment_method}/attach",
            data={"customer": self.customer},
            headers=auth,
            timeout=10,
        ).raise_for_status()

    def pay(self, donation: Donation) -> None:
        """What the checkout and the browser do together: a confirmed PaymentIntent naming
        the donation in its metadata; Stripe's payment_intent.succeeded webhook records
        the payment."""
        requests.post(
            f"{self.api}/v1/payment_intents",
            data={
                "amount": donation.amount,
                "currency": donation.currency,
                "customer": self.customer,
                "payment_method": self.payment_method,
                "confirm": "true",
                "metadata[donation_id]": str(donation.pk),
            },
            headers={**self.auth, "Idempotency-Key": f"drill-pay-{donation.pk}"},
            timeout=10,
        ).raise_for_status()


def paid(donations: list[Donation]) -> int:
    ids = [donation.pk for donation in donations]
    return Donation.objects.filter(pk__in=ids, status=Donation.Status.PAID).count()


class Process:
    """A child process of the restored site (worker, beat, web) with its log under var/."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.log_path = log_dir / f"{name}.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop())
        self.process = subprocess.Popen(
            argv, cwd=BASE_DIR, env=env, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()
        self.log.close()


def test_backup_while_sending_then_restore_resume_and_replay(
    live_server, localstripe, settings, tmp_path
):
    app.control.purge()
    var = Path(settings.VAR_DIR) / "drill-restore"
    var.mkdir(parents=True, exist_ok=True)
    for path in (var, var.parent):
        path.chmod(0o777)  # smtp-sink runs as nobody when started by root
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    settings.BACKUP_ENCRYPTION_KEY = key
    settings.MEDIA_ROOT = tmp_path / "media-old"
    (settings.MEDIA_ROOT / "articles").mkdir(parents=True)
    (settings.MEDIA_ROOT / "articles" / "front.jpg").write_bytes(os.urandom(20_000))
    settings.SITE_URL = live_server.url
    stripe_gateway.localstripe_webhook_register(site_url=live_server.url)

    sink = PostfixSink(var / f"sink-{os.getpid()}")
    mail = {**FAST, "EMAIL_URL": f"smtp://127.0.0.1:{sink.port}"}
    site = {"SITE_URL": live_server.url, "STRIPE_API_BASE": localstripe, **mail}
    newsletter = NewsletterFactory()
    subscribers_bulk_create(newsletter=newsletter, count=READERS, prefix="restore-drill-")
    issue = IssueFactory(newsletter=newsletter)
    card = Card(localstripe)
    donations = [
        DonationFactory(stripe_payment_intent_id=None, stripe_customer_id=card.customer)
        for _ in range(PAID_BEFORE + PAID_AFTER + STILL_PENDING)
    ]
    before, after = donations[:PAID_BEFORE], donations[PAID_BEFORE : PAID_BEFORE + PAID_AFTER]
    for donation in before:
        card.pay(donation)
    wait_until(lambda: paid(before) == PAID_BEFORE, 30, "the payments before the dump")

    old_workers = [WorkerProcess(concurrency=2, extra_env=site)]
    backup_dir = tmp_path / "backups"
    new: list[Process] = []
    try:
        for worker in old_workers:
            worker.wait_ready()
        issue_send_now(issue=issue)
        sent = Delivery.objects.filter(issue=issue, status=Delivery.Status.SENT)
        wait_until(lambda: sent.count() >= READERS // 4, 60, "a quarter of the send")

        # The backup, while the workers send.
        started = time.monotonic()
        backup = backup_create(output_dir=backup_dir)
        dump_s = time.monotonic() - started

        # The old site goes on: the send finishes, Stripe reports more payments.
        for donation in after:
            card.pay(donation)
        wait_until(lambda: Issue.objects.get(pk=issue.pk).status == Issue.Status.SENT, 90,
                   "the old site to finish its send")  # fmt: skip
        wait_until(lambda: paid(after) == PAID_AFTER, 30, "the payments after the dump")
    finally:
        for worker in old_workers:
            worker.stop()
    accepted_before_restore = received(sink)

    # The new site: a fresh database, the restore, then workers and beat.
    app.control.purge()
    target = restore_database_url()
    database_recreate(target)
    new_env = {
        **os.environ,
        **site,
        "DATABASE_URL": target,
        "BACKUP_ENCRYPTION_KEY": key,
        "MEDIA_ROOT": str(tmp_path / "media-new"),
        "CELERY_BEAT_SCHEDULE_FILENAME": str(tmp_path / "beat-schedule"),
    }
    started = time.monotonic()
    restore = subprocess.run(
        [sys.executable, "manage.py", "restore", str(backup), "--media"],
        cwd=BASE_DIR, env=new_env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    restore_s = time.monotonic() - started
    print(restore.stdout, restore.stderr)
    assert restore.returncode == 0, restore.stderr
    summary = dict(item.split("=") for item in restore.stdout.strip().splitlines()[-1].split()[1:])
    assert (tmp_path / "media-new" / "articles" / "front.jpg").read_bytes() == (
        settings.MEDIA_ROOT / "articles" / "front.jpg"
    ).read_bytes()

    # Deliveries the old site handed to the SMTP server after the snapshot: the restored
    # database still has them to send, so they go out again. Nothing else may.
    unsent_in_backup = {
        row[0]
        for row in query(
            target,
            "SELECT id FROM newsletters_delivery WHERE issue_id = %s AND status <> 'sent'",
            issue.pk,
        )
    }
    sent_at_snapshot = READERS - len(unsent_in_backup)
    accepted_after_snapshot = {
        delivery for (issue_id, delivery) in accepted_before_restore
        if issue_id == issue.pk and delivery in unsent_in_backup
    }  # fmt: skip
    expected_repeats = len(accepted_after_snapshot)
    celery = [sys.executable, "-m", "celery", "-A", "outlet"]
    web_port = free_port()
    try:
        new.append(Process("worker", [*celery, "worker", "-Q", "default,mail,bulk,purge",
                                      "--concurrency", "2", "--without-mingle",
                                      "--without-gossip"], new_env, var))  # fmt: skip
        new.append(Process("beat", [*celery, "beat", "-s", str(tmp_path / "beat")], new_env, var))
        new.append(Process("web", [sys.executable, "manage.py", "runserver", "--noreload",
                                   f"127.0.0.1:{web_port}"], new_env, var))  # fmt: skip

        def issue_status() -> str:
            return query(target, "SELECT status FROM newsletters_issue WHERE id = %s", issue.pk)[0][
                0
            ]

        wait_until(lambda: issue_status() == "sent", 90, "the restored site to finish the send")
        wait_for_port(web_port)
        front = requests.get(f"http://127.0.0.1:{web_port}/", timeout=30)
    finally:
        for process in new:
            process.stop()
        sink.stop()

    counts: Counter = received(sink)
    deliveries = {
        row[0]
        for row in query(
            target, "SELECT id FROM newsletters_delivery WHERE issue_id = %s", issue.pk
        )
    }
    got = {delivery: n for (issue_id, delivery), n in counts.items() if issue_id == issue.pk}
    lost_mail = len(deliveries - set(got)) + (READERS - len(deliveries))
    duplicates = sum(n - 1 for n in got.values())
    payments_after = [donation.pk for donation in after]
    paid_after_replay = query(
        target,
        "SELECT count(*) FROM donations_donation WHERE id = ANY(%s) AND status = 'paid'",
        payments_after,
    )[0][0]
    still_pending = query(
        target,
        "SELECT count(*) FROM donations_donation WHERE id = ANY(%s) AND status = 'pending'",
        [donation.pk for donation in donations[PAID_BEFORE + PAID_AFTER :]],
    )[0][0]
    lost = lost_mail + (PAID_AFTER - paid_after_replay)
    row = {
        "dump_s": round(dump_s, 2),
        "restore_s": round(restore_s, 2),
        "rows_checked": int(summary["rows_checked"]),
        "lost": lost,
        "duplicates": duplicates,
        "expected_duplicates": expected_repeats,
        "sent_at_snapshot": sent_at_snapshot,
        "readers": READERS,
        "replayed_events": int(summary["replayed_events"]),
        "front_page": front.status_code,
    }
    Path(REPORT).write_text(json.dumps(row) + "\n")
    assert front.status_code == 200
    assert lost == 0, row
    assert 0 < sent_at_snapshot < READERS, "not a half-sent issue in the backup"
    # Every repeat is a delivery accepted after the snapshot, mailed once more, no more.
    repeated = {delivery: n for delivery, n in got.items() if n > 1}
    assert set(repeated) <= accepted_after_snapshot, row
    assert set(repeated.values()) <= {2}, row
    assert duplicates == expected_repeats, row
    assert still_pending == STILL_PENDING
    assert int(summary["replayed_events"]) >= PAID_AFTER
