"""The bounce drill (`make drill-bounces`): a real Postfix relays a DKIM-signed newsletter,
sent by a real worker, to a second real Postfix that refuses some readers; Postfix itself
writes the DSNs and delivers them to the bounce Maildir, and the worker takes them in.

    worker --SMTP--> relay Postfix --SMTP--> "mx" Postfix (policy service decides per RCPT)
                        |   ^                    |
                        |   +---- DSN -----------+  (accepted, then its error transport fails)
                        v
         Maildir bounces/ (DSNs, by virtual(8))   Maildir capture/ (a copy of every relayed
                                                  message, sender_bcc_maps: DKIM checked here)

Readers, by local part: ok (accepted), dead (550 5.1.1 at RCPT), flaky (452 at RCPT, then
550 5.1.1 when the relay retries), full (552 5.2.2 mailbox full), gone (accepted by the mx,
then bounced by it: a DSN from the second server). Injected into the relay as well: a
vacation auto-reply, an ARF complaint, a forged DSN with a bad token and a malformed message.

Writes one JSON line to DRILL_REPORT; benchmarks/drill_bounces.py prints the last line.
Skipped unless DRILL_REPORT is set (and run as root, on PostgreSQL).
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import smtplib
import socketserver
import threading
import time
from email.message import EmailMessage
from pathlib import Path

import dkim
import pytest
from django.db import connection

from outlet.celery import app
from outlet.core.dkim import dkim_key_generate
from outlet.newsletters.bounces.models import BounceMessage
from outlet.newsletters.issues import issue_send_now
from outlet.newsletters.models import Delivery, Issue, Subscriber, Suppression
from tests.conftest import WorkerProcess, free_port
from tests.drill.postfix import POSTFIX, PostfixInstance, mailbox_owner
from tests.factories import IssueFactory, NewsletterFactory
from tests.newsletters.bulk import subscribers_bulk_create

REPORT = os.environ.get("DRILL_REPORT", "")
BOUNCE_DOMAIN = "bounces.drill.test"
CAPTURE_DOMAIN = "capture.drill.test"
SELECTOR, DKIM_DOMAIN = "drill2026", "outlet.test"

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not REPORT, reason="run by `make drill-bounces`"),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the drill needs PostgreSQL"),
    pytest.mark.skipif(os.geteuid() != 0, reason="a private Postfix master needs root"),
]

#: How many readers of each kind: 6 hard bounces in 78 stay under the breaker's 10 %
#: (past it the breaker would hold them for the editor: tests/newsletters/test_bounce_relay.py).
READERS = {"ok": 70, "dead": 2, "flaky": 2, "full": 2, "gone": 2}


class PolicyHandler(socketserver.StreamRequestHandler):
    """Postfix's policy delegation protocol (SMTPD_POLICY_README): attribute lines, an
    empty line, answered by `action=...`. The mx's verdict per recipient."""

    attempts: dict[str, int] = {}
    lock = threading.Lock()

    def handle(self) -> None:
        request: dict[str, str] = {}
        for line in self.rfile:
            line = line.decode("ascii", "replace").rstrip("\n")
            if line:
                name, _, value = line.partition("=")
                request[name] = value
                continue
            self.wfile.write(f"action={self.verdict(request.get('recipient', ''))}\n\n".encode())
            self.wfile.flush()
            request = {}

    def verdict(self, recipient: str) -> str:
        local = recipient.partition("@")[0].lower()
        with self.lock:
            self.attempts[local] = self.attempts.get(local, 0) + 1
            attempt = self.attempts[local]
        if local.startswith("dead"):
            return "550 5.1.1 Recipient address rejected: User unknown in virtual mailbox table"
        if local.startswith("flaky"):
            if attempt == 1:
                return "452 4.3.1 Insufficient system storage, try again later"
            return "550 5.1.1 Recipient address rejected: User unknown"
        if local.startswith("full"):
            return "552 5.2.2 Mailbox full: quota exceeded"
        return "DUNNO"


class PolicyServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def maildir_messages(path: Path) -> list[bytes]:
    found = []
    for folder in ("new", "cur"):
        directory = path / folder
        if directory.is_dir():
            found += [entry.read_bytes() for entry in sorted(directory.iterdir())]
    return found


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def inject(port: int, message: EmailMessage | bytes, *, sender: str, to: str) -> None:
    data = message if isinstance(message, bytes) else message.as_bytes()
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail(sender, [to], data)


def vacation_reply(to: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "ok1@example.com"
    message["To"] = to
    message["Subject"] = "Out of office: The Outlet"
    message["Auto-Submitted"] = "auto-replied"
    message.set_content("I am away until Monday and will read your mail then.")
    return message


def arf_complaint(to: str, return_path: str, recipient: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "feedback@isp.example"
    message["To"] = to
    message["Subject"] = "Abuse report"
    message.set_content("This is an email abuse report for an email message received.")
    message.make_mixed()
    message.replace_header("Content-Type", 'multipart/report; report-type="feedback-report"')
    feedback = email.message.Message()
    feedback["Content-Type"] = "message/feedback-report"
    feedback.set_payload(
        "Feedback-Type: abuse\nUser-Agent: drill-fbl/1.0\nVersion: 1\n"
        f"Original-Mail-From: <{return_path}>\nOriginal-Rcpt-To: <{recipient}>\n"
    )
    message.attach(feedback)
    original = email.message.Message()
    original["Content-Type"] = "text/rfc822-headers"
    original.set_payload(f"Return-Path: <{return_path}>\nTo: <{recipient}>\nSubject: x\n")
    message.attach(original)
    return message


def forged_dsn(victim: str) -> bytes:
    """A DSN naming a reader who never bounced, sent to a made-up token."""
    return (
        "From: MAILER-DAEMON@mx.evil.example\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.evil.example\r\n\r\n"
        f"Final-Recipient: rfc822; {victim}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n"
        "--b--\r\n"
    ).encode()


def test_postfix_generates_the_dsns_and_the_worker_takes_them_in(settings, tmp_path):
    if not Path(POSTFIX).exists():
        pytest.fail("Postfix is missing: apt-get install postfix (make drill-bounces does it)")
    app.control.purge()
    root = Path(settings.VAR_DIR).resolve() / "drill-bounces"
    uid, gid = mailbox_owner()
    relay_port, mx_port, policy_port = free_port(), free_port(), free_port()

    policy = PolicyServer(("127.0.0.1", policy_port), PolicyHandler)
    threading.Thread(target=policy.serve_forever, daemon=True).start()

    mail = root / "relay" / "mail"
    relay = PostfixInstance(
        root / "relay",
        hostname="relay.drill.test",
        port=relay_port,
        main_cf=(
            f"relayhost = [127.0.0.1]:{mx_port}\n"
            f"virtual_mailbox_domains = {BOUNCE_DOMAIN} {CAPTURE_DOMAIN}\n"
            f"virtual_mailbox_base = {mail}\n"
            f"virtual_mailbox_maps = texthash:{root}/relay/etc/mailboxes\n"
            f"virtual_uid_maps = static:{uid}\nvirtual_gid_maps = static:{gid}\n"
            f"sender_bcc_maps = texthash:{root}/relay/etc/copies\n"
            "notify_classes =\n"
        ),
    )
    (root / "relay" / "etc" / "mailboxes").write_text(
        f"@{BOUNCE_DOMAIN} bounces/\n@{CAPTURE_DOMAIN} capture/\n"
    )
    (root / "relay" / "etc" / "copies").write_text(f"@{BOUNCE_DOMAIN} copy@{CAPTURE_DOMAIN}\n")
    mail.mkdir(parents=True)
    os.chown(mail, uid, gid)
    mx = PostfixInstance(
        root / "mx",
        hostname="mx.drill.test",
        port=mx_port,
        main_cf=(
            "relay_domains = example.com\n"
            # Accept every recipient the policy lets through, "gone" ones included: their
            # error transport fails them after the message was accepted.
            "smtpd_reject_unlisted_recipient = no\n"
            f"transport_maps = texthash:{root}/mx/etc/transport\n"
            "smtpd_recipient_restrictions = "
            f"check_policy_service inet:127.0.0.1:{policy_port}, reject_unauth_destination\n"
            "notify_classes =\n"
        ),
    )
    transport = [
        f"gone{n}@example.com error:5.1.1 Mailbox no longer in use" for n in range(READERS["gone"])
    ]
    transport += ["example.com discard:", f"{BOUNCE_DOMAIN} smtp:[127.0.0.1]:{relay_port}"]
    (root / "mx" / "etc" / "transport").write_text("\n".join(transport) + "\n")

    key_path = tmp_path / "dkim.pem"
    key = dkim_key_generate(selector=SELECTOR, domain=DKIM_DOMAIN, path=key_path)
    txt = key.dns_value().encode()

    newsletter = NewsletterFactory(from_email=f"newsletters@{DKIM_DOMAIN}")
    emails: dict[str, list[str]] = {}
    for kind, count in READERS.items():
        emails[kind] = subscribers_bulk_create(newsletter=newsletter, count=count, prefix=kind)
    issue = IssueFactory(newsletter=newsletter)
    env = {
        "NEWSLETTER_BATCH_SIZE": "20",
        "NEWSLETTER_SEND_LANES": "2",
        "EMAIL_URL": f"smtp://127.0.0.1:{relay_port}",
        "BOUNCE_DOMAIN": BOUNCE_DOMAIN,
        "BOUNCE_MAILDIR": str(mail / "bounces"),
        "BOUNCE_KEEP": "1",
        "DKIM_SELECTOR": SELECTOR,
        "DKIM_DOMAIN": DKIM_DOMAIN,
        "DKIM_PRIVATE_KEY_FILE": str(key_path),
    }
    settings.BOUNCE_DOMAIN = BOUNCE_DOMAIN
    for instance in (mx, relay):
        instance.start()
    worker = WorkerProcess(extra_env=env)
    started = time.monotonic()
    try:
        worker.wait_ready()
        issue_send_now(issue=issue)
        wait_until(
            lambda: Issue.objects.get(pk=issue.pk).status == Issue.Status.SENT, 90, "the send"
        )
        sent = Delivery.objects.filter(issue=issue, status=Delivery.Status.SENT).count()
        bounced = sum(READERS[kind] for kind in ("dead", "flaky", "full", "gone"))
        copies_dir, bounces_dir = mail / "capture", mail / "bounces"
        wait_until(lambda: len(maildir_messages(copies_dir)) >= sent, 60, "the relayed copies")
        wait_until(lambda: len(maildir_messages(bounces_dir)) >= bounced, 90, "Postfix's DSNs")
        copies = maildir_messages(copies_dir)

        def return_path_of(address: str) -> str:
            for copy in copies:
                parsed = email.message_from_bytes(copy, policy=email.policy.compat32)
                if parsed["To"] and address in parsed["To"]:
                    return parsed["Return-Path"].strip("<> ")
            raise AssertionError(f"no copy to {address}")

        vacation_to = return_path_of(emails["ok"][1])
        complaint_from = return_path_of(emails["ok"][2])
        inject(relay_port, vacation_reply(vacation_to), sender=emails["ok"][1], to=vacation_to)
        inject(
            relay_port,
            arf_complaint(complaint_from, complaint_from, emails["ok"][2]),
            sender="feedback@isp.example",
            to=complaint_from,
        )
        forged_to = f"bounces+d1-{'0' * 25}@{BOUNCE_DOMAIN}"
        inject(relay_port, forged_dsn(emails["ok"][3]), sender="", to=forged_to)
        inject(
            relay_port,
            b"\x00\x01 this is not mail \xff\xfe\r\n",
            sender="x@elsewhere.example",
            to=f"bounces+zz@{BOUNCE_DOMAIN}",
        )
        injected = 4
        wait_until(
            lambda: len(maildir_messages(bounces_dir)) >= bounced + injected, 30, "the injected"
        )
        mailbox = maildir_messages(bounces_dir)
        # The worker takes them in: the beat task, twice (the second finds nothing new).
        from outlet.newsletters.tasks import bounce_mailboxes_poll_task

        bounce_mailboxes_poll_task.delay()
        wait_until(lambda: BounceMessage.objects.count() >= len(mailbox), 60, "the worker's intake")
        bounce_mailboxes_poll_task.delay()
        time.sleep(2)
    finally:
        worker.stop()
        relay.stop()
        mx.stop()
        policy.shutdown()
    elapsed = time.monotonic() - started

    outcomes: dict[str, int] = {}
    for row in BounceMessage.objects.values_list("outcome", flat=True):
        outcomes[row] = outcomes.get(row, 0) + 1
    dsn = sum(
        1
        for raw in mailbox
        if re.search(rb"Reporting-MTA: dns; (relay|mx)\.drill\.test", raw)
        and b"report-type=delivery-status" in raw
    )
    suppressed = set(Suppression.objects.values_list("email_hash", flat=True))
    from outlet.core.addresses import email_digest

    should = {email_digest(e) for kind in ("dead", "flaky", "gone") for e in emails[kind]}
    should.add(email_digest(emails["ok"][2]))  # the complaint
    wrongly = (
        len(suppressed - should)
        + Subscriber.objects.filter(email__in=emails["ok"][:1] + emails["ok"][3:])
        .exclude(status=Subscriber.Status.ACTIVE)
        .count()
    )
    soft_counted = Subscriber.objects.filter(email__in=emails["full"], soft_bounce_count=1).count()
    missing = len(should - suppressed) + (READERS["full"] - soft_counted)
    lost = missing + max(0, len(mailbox) - BounceMessage.objects.count())
    passed = 0
    for copy in copies:
        if dkim.verify(copy, dnsfunc=lambda name, timeout=5: txt):
            passed += 1
    row = {
        "sent": sent,
        "dsn": dsn,
        "hard": outcomes.get("hard", 0),
        "soft": outcomes.get("soft", 0),
        "complaints": outcomes.get("complaint", 0),
        "ignored": outcomes.get("ignored", 0),
        "forged_refused": outcomes.get("forged", 0),
        "unparsed": outcomes.get("unparsed", 0),
        "wrongly_suppressed": wrongly,
        "lost": lost,
        "dkim_passed": passed,
        "dkim_checked": len(copies),
        "seconds": round(elapsed, 1),
    }
    with open(REPORT, "a") as handle:
        handle.write(json.dumps(row) + "\n")
    assert sent == sum(READERS.values())
    assert len(copies) == sent
    assert passed == len(copies)
    assert dsn == bounced
    assert wrongly == 0 and lost == 0, row
    assert (row["hard"], row["soft"], row["complaints"], row["ignored"]) == (
        READERS["dead"] + READERS["flaky"] + READERS["gone"],
        READERS["full"],
        1,
        1,
    ), row
    assert outcomes.get("forged") == 1 and outcomes.get("unparsed") == 1, row
