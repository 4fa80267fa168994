"""Bounces that come back: messages written after RFC 3464 (DSN), RFC 5965 (ARF) and
RFC 3834 (auto-replies), taken in through `manage.py bounce_receive` (a Postfix pipe)
and the Maildir poller, each acting once, like an ESP's webhook."""

from __future__ import annotations

import io
import re
import shutil
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from outlet.core.addresses import email_digest
from outlet.newsletters.bounces.addresses import delivery_return_path, message_return_path
from outlet.newsletters.bounces.intake import bounce_counts
from outlet.newsletters.bounces.mailbox import bounce_mailboxes_poll, maildir_poll
from outlet.newsletters.bounces.models import BounceMessage
from outlet.newsletters.models import Delivery, DeliveryEvent, Subscriber, Suppression
from outlet.newsletters.tasks import bounce_mailboxes_poll_task
from tests.factories import IssueFactory, SubscriberFactory

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures" / "bounces"


@pytest.fixture(autouse=True)
def _bounce_domain(settings):
    settings.BOUNCE_DOMAIN = "bounces.outlet.test"
    settings.NEWSLETTER_SOFT_BOUNCE_LIMIT = 3


def _delivery(newsletter, email: str) -> Delivery:
    from django.utils import timezone

    subscriber = SubscriberFactory(email=email, newsletters=[newsletter])
    issue = IssueFactory(newsletter=newsletter)
    return Delivery.objects.create(
        issue=issue, subscriber=subscriber, status=Delivery.Status.SENT, sent_at=timezone.now()
    )


def fixture(name: str, *, recipient: str, return_path: str) -> bytes:
    text = (FIXTURES / name).read_text()
    return text.replace("{recipient}", recipient).replace("{return_path}", return_path).encode()


def receive(raw: bytes, monkeypatch, *, recipient: str | None = None) -> str:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
    out = io.StringIO()
    call_command("bounce_receive", *(["--recipient", recipient] if recipient else []), stdout=out)
    return out.getvalue()


def suppressed(email: str) -> str | None:
    row = Suppression.objects.filter(email_hash=email_digest(email)).first()
    return row.reason if row else None


def test_a_dsn_after_acceptance_suppresses_and_counts_for_the_issue_once(daily, monkeypatch):
    delivery = _delivery(daily, "gone@example.org")
    return_path = delivery_return_path(delivery_id=delivery.pk, email="gone@example.org")
    raw = fixture(
        "dsn-5.1.1-after-acceptance.eml", recipient="gone@example.org", return_path=return_path
    )

    assert receive(raw, monkeypatch, recipient=return_path) == "bounce: hard (taken in)\n"
    assert receive(raw, monkeypatch, recipient=return_path) == "bounce: hard (already taken in)\n"

    assert suppressed("gone@example.org") == Suppression.Reason.HARD_BOUNCE
    assert Subscriber.objects.get(email="gone@example.org").status == Subscriber.Status.BOUNCED
    assert list(DeliveryEvent.objects.values_list("delivery_id", "kind")) == [
        (delivery.pk, DeliveryEvent.Kind.BOUNCE)
    ]
    row = BounceMessage.objects.get()
    assert (row.outcome, row.delivery_id, row.source) == ("hard", delivery.pk, "pipe")
    assert "gone@example.org" not in row.detail and "5.1.1" in row.detail


def test_a_full_mailbox_is_a_soft_bounce_counted_once_however_often_it_arrives(daily, monkeypatch):
    delivery = _delivery(daily, "full@example.org")
    return_path = delivery_return_path(delivery_id=delivery.pk, email="full@example.org")
    raw = fixture(
        "dsn-4.2.2-mailbox-full.eml", recipient="full@example.org", return_path=return_path
    )

    for _ in range(3):  # three times the limit, yet one message
        receive(raw, monkeypatch)

    assert Subscriber.objects.get(email="full@example.org").soft_bounce_count == 1
    assert suppressed("full@example.org") is None
    assert bounce_counts()["soft"] == 1


def test_a_delay_notice_and_a_vacation_reply_change_nothing(daily, monkeypatch):
    delivery = _delivery(daily, "away@example.org")
    return_path = delivery_return_path(delivery_id=delivery.pk, email="away@example.org")
    for name, outcome in (("dsn-delayed.eml", "delayed"), ("vacation-reply.eml", "ignored")):
        raw = fixture(name, recipient="away@example.org", return_path=return_path)
        assert receive(raw, monkeypatch) == f"bounce: {outcome} (taken in)\n"

    assert suppressed("away@example.org") is None
    assert Subscriber.objects.get(email="away@example.org").soft_bounce_count == 0
    assert not DeliveryEvent.objects.exists()


def test_a_feedback_loop_complaint_suppresses_and_counts_for_the_issue(daily, monkeypatch):
    delivery = _delivery(daily, "angry@example.org")
    return_path = delivery_return_path(delivery_id=delivery.pk, email="angry@example.org")
    # Sent to the feedback loop's own address: the token is in Original-Mail-From.
    raw = fixture("arf-complaint.eml", recipient="angry@example.org", return_path=return_path)

    assert receive(raw, monkeypatch) == "bounce: complaint (taken in)\n"

    assert suppressed("angry@example.org") == Suppression.Reason.COMPLAINT
    assert DeliveryEvent.objects.get().kind == DeliveryEvent.Kind.COMPLAINT


def test_a_complaint_with_the_recipient_redacted_is_tied_to_the_delivery(daily, monkeypatch):
    delivery = _delivery(daily, "angry@example.org")
    return_path = delivery_return_path(delivery_id=delivery.pk, email="angry@example.org")
    raw = fixture(
        "arf-complaint.eml", recipient="redacted@isp.example.net", return_path=return_path
    )

    assert receive(raw, monkeypatch) == "bounce: complaint (taken in)\n"
    assert suppressed("angry@example.org") == Suppression.Reason.COMPLAINT
    assert suppressed("redacted@isp.example.net") is None


def test_a_non_standard_bounce_is_read_by_flufl_bounce(daily, monkeypatch):
    delivery = _delivery(daily, "nobody@example.com")
    return_path = delivery_return_path(delivery_id=delivery.pk, email="nobody@example.com")
    raw = fixture("qmail-bounce.eml", recipient="nobody@example.com", return_path=return_path)

    assert receive(raw, monkeypatch) == "bounce: hard (taken in)\n"
    assert suppressed("nobody@example.com") == Suppression.Reason.HARD_BOUNCE


def test_a_bounce_of_a_receipt_suppresses_its_reader(daily, monkeypatch):
    SubscriberFactory(email="donor@example.org", newsletters=[daily])
    return_path = message_return_path(email="donor@example.org")
    raw = fixture(
        "dsn-5.1.1-after-acceptance.eml", recipient="donor@example.org", return_path=return_path
    )

    assert receive(raw, monkeypatch) == "bounce: hard (taken in)\n"
    assert suppressed("donor@example.org") == Suppression.Reason.HARD_BOUNCE


@pytest.mark.parametrize("forgery", ["someone else's address", "tampered", "no token"])
def test_a_forged_bounce_suppresses_nobody_and_is_counted(daily, monkeypatch, forgery):
    attacker = _delivery(daily, "attacker@example.org")
    victim = _delivery(daily, "victim@example.org")
    own = delivery_return_path(delivery_id=attacker.pk, email="attacker@example.org")
    return_path = {
        "someone else's address": own,  # a real token, for the attacker's own address
        # The attacker's token pointed at the victim's delivery: the signature no longer fits.
        "tampered": re.sub(r"\+d[0-9a-f]+-", f"+d{victim.pk:x}-", own),
        "no token": "bounces@bounces.outlet.test",
    }[forgery]
    raw = fixture(
        "dsn-5.1.1-after-acceptance.eml", recipient="victim@example.org", return_path=return_path
    )

    assert receive(raw, monkeypatch) == "bounce: forged (taken in)\n"

    assert not Suppression.objects.exists()
    assert not DeliveryEvent.objects.exists()
    assert bounce_counts()["forged"] == 1


def test_a_malformed_message_is_set_aside_with_its_bytes_and_counted(monkeypatch):
    raw = fixture(
        "malformed.eml", recipient="x@example.org", return_path="bounces+zz@bounces.outlet.test"
    )

    assert receive(raw, monkeypatch) == "bounce: unparsed (taken in)\n"
    row = BounceMessage.objects.get()
    assert bytes(row.raw) == raw
    assert bounce_counts()["unparsed"] == 1


def test_bounce_receive_refuses_an_empty_input(monkeypatch):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No message"):
        receive(b"", monkeypatch)


def _maildir(tmp_path: Path, messages: dict[str, bytes]) -> Path:
    root = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True)
    for name, raw in messages.items():
        (root / "new" / name).write_bytes(raw)
    return root


def _every_case(daily) -> tuple[dict[str, bytes], Delivery]:
    gone, full, away, angry, attacker = (
        _delivery(daily, f"{who}@example.org")
        for who in ("gone", "full", "away", "angry", "attacker")
    )

    def rp(delivery: Delivery) -> str:
        return delivery_return_path(delivery_id=delivery.pk, email=delivery.subscriber.email)

    messages = {
        "1.hard": fixture(
            "dsn-5.1.1-after-acceptance.eml", recipient="gone@example.org", return_path=rp(gone)
        ),
        "2.soft": fixture(
            "dsn-4.2.2-mailbox-full.eml", recipient="full@example.org", return_path=rp(full)
        ),
        "3.vacation": fixture(
            "vacation-reply.eml", recipient="away@example.org", return_path=rp(away)
        ),
        "4.complaint": fixture(
            "arf-complaint.eml", recipient="angry@example.org", return_path=rp(angry)
        ),
        "5.forged": fixture(
            "dsn-5.1.1-after-acceptance.eml", recipient="full@example.org", return_path=rp(attacker)
        ),
        "6.malformed": fixture(
            "malformed.eml", recipient="x@example.org", return_path=rp(attacker)
        ),
    }
    return messages, full


def test_the_maildir_poller_takes_in_every_case_once_and_sets_aside_what_it_cannot_read(
    tmp_path, daily
):
    messages, full = _every_case(daily)
    root = _maildir(tmp_path, messages)

    counts = maildir_poll(path=root, keep=True)

    assert dict(counts) == {
        "hard": 1,
        "soft": 1,
        "ignored": 1,
        "complaint": 1,
        "forged": 1,
        "unparsed": 1,
    }
    assert suppressed("gone@example.org") == Suppression.Reason.HARD_BOUNCE
    assert suppressed("angry@example.org") == Suppression.Reason.COMPLAINT
    assert suppressed("full@example.org") is None  # the forged hard bounce named it
    assert suppressed("attacker@example.org") is None
    assert Subscriber.objects.get(pk=full.subscriber_id).soft_bounce_count == 1
    assert not list((root / "new").iterdir())
    assert sorted(p.name for p in (root / "cur").iterdir()) == [
        f"{name}:2,S" for name in sorted(messages) if name != "6.malformed"
    ]
    assert [p.name for p in (root / ".Unparsed" / "cur").iterdir()] == ["6.malformed:2,"]

    # Run twice: nothing new. A worker killed before it marked a message done finds it
    # again, and intake knows it.
    assert not maildir_poll(path=root, keep=True)
    shutil.copy(root / "cur" / "2.soft:2,S", root / "new" / "2.soft-again")
    assert dict(maildir_poll(path=root, keep=True)) == {"soft": 1}
    assert Subscriber.objects.get(pk=full.subscriber_id).soft_bounce_count == 1
    assert BounceMessage.objects.count() == 6
    assert bounce_counts() | {} == {
        "hard": 1,
        "soft": 1,
        "complaint": 1,
        "policy": 0,
        "delayed": 0,
        "ignored": 1,
        "forged": 1,
        "unparsed": 1,
    }


def test_the_beat_task_deletes_what_it_took_in_when_told_not_to_keep(tmp_path, daily, settings):
    messages, _ = _every_case(daily)
    root = _maildir(tmp_path, messages)
    settings.BOUNCE_MAILDIR, settings.BOUNCE_KEEP = str(root), False

    assert sum(bounce_mailboxes_poll_task().values()) == 6

    assert not list((root / "new").iterdir()) and not list((root / "cur").iterdir())
    assert [p.name for p in (root / ".Unparsed" / "cur").iterdir()] == ["6.malformed:2,"]
    assert not bounce_mailboxes_poll()


def test_staff_see_what_came_back_by_outcome_and_read_a_message_set_aside(
    admin_client, monkeypatch
):
    raw = fixture(
        "malformed.eml", recipient="x@example.org", return_path="bounces+zz@bounces.outlet.test"
    )
    receive(raw, monkeypatch)
    row = BounceMessage.objects.get()

    listing = admin_client.get("/admin/newsletters/bouncemessage/?outcome=unparsed")
    detail = admin_client.get(f"/admin/newsletters/bouncemessage/{row.pk}/change/")

    assert listing.status_code == 200 and "Not understood" in listing.text
    assert detail.status_code == 200 and "this is not a delivery status at all" in detail.text
