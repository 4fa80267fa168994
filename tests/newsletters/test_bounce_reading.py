"""Reading returned messages that are not what the RFCs promise: raw 8-bit bytes or NUL
bytes in headers (which the compat32 parser hands back as Header objects), and the
feedback types and status codes that must not cost a reader their subscription."""

from __future__ import annotations

import pytest

from outlet.newsletters.bounces.addresses import delivery_return_path
from outlet.newsletters.bounces.intake import bounce_message_process
from outlet.newsletters.bounces.mailbox import maildir_poll
from outlet.newsletters.bounces.models import BounceMessage
from outlet.newsletters.bounces.reading import Outcome, bounce_read
from tests.newsletters.test_bounce_intake import _delivery, _maildir, fixture, receive

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _bounce_domain(settings):
    settings.BOUNCE_DOMAIN = "bounces.outlet.test"


def _hard(email: str = "reader@example.org", delivery_id: int = 1) -> bytes:
    return_path = delivery_return_path(delivery_id=delivery_id, email=email)
    return fixture("dsn-5.1.1-after-acceptance.eml", recipient=email, return_path=return_path)


def test_a_raw_8bit_diagnostic_code_is_read():
    raw = _hard().replace(b"User unknown in virtual", "Utilisateur inconnu é".encode())

    report = bounce_read(raw)

    assert report.outcome == Outcome.HARD
    assert isinstance(report.detail, str) and "5.1.1" in report.detail
    assert report.recipients == ["reader@example.org"]


@pytest.mark.parametrize(
    ("name", "header"),
    [
        ("dsn-5.1.1-after-acceptance.eml", b"Action: failed \xc3\xa9"),
        ("vacation-reply.eml", b"Auto-Submitted: auto-repli\xe9d"),
    ],
)
def test_raw_8bit_bytes_in_any_header_read_never_raise(name, header):
    return_path = delivery_return_path(delivery_id=1, email="reader@example.org")
    raw = fixture(name, recipient="reader@example.org", return_path=return_path)
    name = header.split(b":")[0]
    raw = b"\n".join(header if line.startswith(name + b":") else line for line in raw.split(b"\n"))

    assert bounce_read(raw).outcome in set(Outcome)


def test_an_8bit_feedback_type_is_read():
    return_path = delivery_return_path(delivery_id=1, email="reader@example.org")
    raw = fixture("arf-complaint.eml", recipient="reader@example.org", return_path=return_path)

    report = bounce_read(raw.replace(b"Feedback-Type: abuse", "Feedback-Type: abusé".encode()))

    assert report.outcome in set(Outcome)


def test_bounce_read_never_raises(monkeypatch):
    import outlet.newsletters.bounces.reading as reading

    def broken(message):
        raise RuntimeError("a detector's bug")

    monkeypatch.setattr(reading, "_read_dsn", broken)

    assert bounce_read(_hard()).outcome == Outcome.UNPARSED


@pytest.mark.parametrize(
    "mutation",
    [
        (b"Message-Id: <2026", "Message-Id: <é2026".encode()),
        (b"Message-Id: <2026", b"Message-Id: <\x002026"),
        (b"User unknown in virtual", b"User\x00unknown \xff\xfe"),
    ],
    ids=["non-ascii message-id", "nul message-id", "nul and bad bytes in diagnostic"],
)
def test_odd_bytes_in_headers_are_taken_in_and_stored(daily, mutation):
    delivery = _delivery(daily, "gone@example.org")
    raw = _hard("gone@example.org", delivery.pk).replace(*mutation)

    processed = bounce_message_process(raw=raw, source=BounceMessage.Source.PIPE)

    assert processed.new and processed.outcome == Outcome.HARD
    row = BounceMessage.objects.get()
    assert "\x00" not in row.message_id and "\x00" not in row.detail
    assert row.message_id.endswith("@relay.outlet.test>")


def test_a_maildir_with_an_8bit_bounce_and_a_vacation_reply_takes_in_both(tmp_path, daily):
    gone = _delivery(daily, "gone@example.org")
    away = _delivery(daily, "away@example.org")
    root = _maildir(
        tmp_path,
        {
            "1.hard": _hard("gone@example.org", gone.pk).replace(
                b"User unknown in virtual", "Utilisateur inconnu é".encode()
            ),
            "2.vacation": fixture(
                "vacation-reply.eml",
                recipient="away@example.org",
                return_path=delivery_return_path(delivery_id=away.pk, email="away@example.org"),
            ),
        },
    )

    counts = maildir_poll(path=root, keep=True)

    assert dict(counts) == {"hard": 1, "ignored": 1}
    assert not list((root / "new").iterdir())


def test_bounce_receive_asks_postfix_to_retry_on_an_unexpected_failure(monkeypatch):
    """Any exit but 0 and 75 makes Postfix bounce the bounce, and so lose it."""
    from outlet.newsletters.management.commands import bounce_receive

    def broken(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(bounce_receive, "bounce_message_process", broken)

    with pytest.raises(SystemExit) as exited:
        receive(_hard(), monkeypatch)
    assert exited.value.code == bounce_receive.EX_TEMPFAIL == 75


def _arf(feedback_type: str | None) -> bytes:
    return_path = delivery_return_path(delivery_id=1, email="reader@example.org")
    raw = fixture("arf-complaint.eml", recipient="reader@example.org", return_path=return_path)
    replacement = f"Feedback-Type: {feedback_type}\n".encode() if feedback_type else b""
    return raw.replace(b"Feedback-Type: abuse\n", replacement)


@pytest.mark.parametrize("feedback_type", ["abuse", "fraud", "Abuse", None])
def test_abuse_and_fraud_reports_are_complaints(feedback_type):
    assert bounce_read(_arf(feedback_type)).outcome == Outcome.COMPLAINT


@pytest.mark.parametrize("feedback_type", ["auth-failure", "not-spam", "other", "virus"])
def test_other_feedback_reports_are_recorded_and_suppress_nobody(feedback_type):
    report = bounce_read(_arf(feedback_type))

    assert report.outcome == Outcome.IGNORED
    assert feedback_type in report.detail


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        # The reader's mailbox or domain is gone, or disabled: hard.
        ("5.1.1", Outcome.HARD),
        ("5.1.2", Outcome.HARD),
        ("5.1.3", Outcome.HARD),
        ("5.1.10", Outcome.HARD),
        ("5.2.1", Outcome.HARD),
        # Full: soft, like the relay giving up on a temporary failure.
        ("5.2.2", Outcome.SOFT),
        ("4.4.7", Outcome.SOFT),
        # Nothing about the reader's mailbox: recorded, the reader untouched.
        ("5.3.4", Outcome.POLICY),
        ("5.6.0", Outcome.POLICY),
        ("5.4.4", Outcome.POLICY),
        ("5.4.6", Outcome.POLICY),
        ("5.7.1", Outcome.POLICY),
        ("5.0.0", Outcome.POLICY),
        ("5.1.8", Outcome.POLICY),
        (None, Outcome.POLICY),
    ],
)
def test_only_a_gone_or_disabled_mailbox_is_a_hard_bounce(status, outcome):
    replacement = f"Status: {status}\n".encode() if status else b""
    raw = _hard().replace(b"Status: 5.1.1\n", replacement)
    if status is None:  # no code anywhere in the recipient's block
        raw = raw.replace(b"550 5.1.1 <", b"550 <")

    assert bounce_read(raw).outcome == outcome
