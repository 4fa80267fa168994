"""Reading a returned message: what it says happened, to whom, and under which token.

Contract: `bounce_read(raw, envelope_recipient=...)` is a pure function of the message's
bytes (and the address it was delivered to, when the MTA tells it): it never raises on
bad input and returns a `BounceReport` whose `outcome` is one of `Outcome`:

- a DSN (RFC 3464, multipart/report; report-type=delivery-status): per recipient,
  Action "failed" is HARD only when the mailbox or its domain is gone or disabled (5.1.1,
  5.1.2, 5.1.3, 5.1.10, 5.2.1); 5.2.2 (mailbox full) is SOFT like a full mailbox refused
  at RCPT (sending/refusals.py), and so is 4.x.x (the relay gave up retrying); any other
  code, or none (too big, content, routing, X.7.x policy, the sender's domain, 5.0.0),
  says nothing about the reader's mailbox: POLICY, recorded and acting on nobody;
  "delayed", "delivered", "relayed" and "expanded" change nothing (DELAYED);
- a feedback report (ARF, RFC 5965, report-type=feedback-report) of type "abuse" or
  "fraud" (or none: ARF's default) is a COMPLAINT; "auth-failure", "not-spam", "virus"
  and "other" are IGNORED (recorded, nobody suppressed);
- an auto-reply (RFC 3834 Auto-Submitted other than "no", X-Autoreply, X-Autorespond,
  Precedence auto_reply) is IGNORED;
- otherwise flufl.bounce's detectors (the non-standard bounces providers still send):
  permanent failures are judged by the status code the bounce states before its returned
  copy, as in a DSN (HARD only for a gone mailbox; HARD when it states none), temporary
  ones are SOFT;
- anything else is UNPARSED: set aside, never dropped.

The token comes from the address the message was delivered to (the MTA's recipient,
Delivered-To, X-Original-To, To), or for a complaint from the reported Original-Mail-From
or the returned message's Return-Path (feedback loops mail a fixed address).
"""

from __future__ import annotations

import email
import email.policy
import logging
import re
from dataclasses import dataclass, field
from email.header import Header
from email.message import Message
from email.utils import getaddresses

from django.db import models
from django.utils.translation import gettext_lazy as _

from outlet.newsletters.bounces.addresses import (
    BounceToken,
    bounce_address_seen,
    token_from_address,
)

logger = logging.getLogger(__name__)


class Outcome(models.TextChoices):
    HARD = "hard", _("Hard bounce")
    SOFT = "soft", _("Soft bounce")
    COMPLAINT = "complaint", _("Complaint")
    POLICY = "policy", _("Refused by the receiver's policy")
    DELAYED = "delayed", _("Delay notice")
    IGNORED = "ignored", _("Auto-reply")
    FORGED = "forged", _("Bad or missing token")
    UNPARSED = "unparsed", _("Not understood")


@dataclass
class BounceReport:
    outcome: str
    #: Addresses the report names (Original-/Final-Recipient, Original-Rcpt-To, flufl's).
    recipients: list[str] = field(default_factory=list)
    token: BounceToken | None = None
    #: A bounces+...@BOUNCE_DOMAIN address was seen, whatever its token's shape.
    token_seen: bool = False
    detail: str = ""
    message_id: str = ""


_STATUS = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})")
_AUTO_PRECEDENCE = {"auto_reply"}
#: (subject, detail) of the 5.x.x statuses (RFC 3463) that say the reader's mailbox is
#: gone: bad mailbox (5.1.1), bad system (5.1.2), bad address syntax (5.1.3), null MX
#: (5.1.10, RFC 7505), mailbox disabled (5.2.1).
_HARD_STATUSES = {("1", "1"), ("1", "2"), ("1", "3"), ("1", "10"), ("2", "1")}
#: ARF feedback types (RFC 5965) that mean the reader did not want the mail; the others
#: (auth-failure, not-spam, virus, other) say nothing against the reader's subscription.
_COMPLAINT_TYPES = {"abuse", "fraud"}
#: NUL bytes (a database text column refuses them) and lone surrogates (raw 8-bit bytes
#: the parser kept as surrogateescapes, which cannot be encoded).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _text(value: object) -> str:
    """A header's value as a plain str. compat32 hands a header holding raw 8-bit bytes
    back as an `email.header.Header`, which has no str methods."""
    if value is None:
        return ""
    try:
        text = str(value)
    except Exception:  # noqa: BLE001  an undecodable Header: keep what can be kept
        text = str(value.encode()) if isinstance(value, Header) else ""
    return _UNSTORABLE.sub("", text)


def _header(message: Message, name: str) -> str:
    return _text(message.get(name))


def _headers(message: Message, name: str) -> list[str]:
    return [_text(value) for value in message.get_all(name, [])]


def _parse(raw: bytes) -> Message | None:
    try:
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
    except Exception:  # noqa: BLE001  the parser is lenient; anything else is bad input
        return None
    if not message.keys():
        return None
    return message


def _address_of(field_value: str) -> str:
    """The address in "rfc822; someone@example.org" (RFC 3464's address-type prefix)."""
    value = field_value.strip()
    if ";" in value:
        value = value.split(";", 1)[1]
    return value.strip().strip("<>").strip()


def _blocks(part: Message) -> list[Message]:
    """A message/* part's contents as header blocks (the parser gives a list of messages
    for message/delivery-status and message/rfc822, a string for a malformed one)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)] or [Message()]
    return [email.message_from_string(str(payload or ""), policy=email.policy.compat32)]


def _report_part(message: Message, report_type: str) -> Message | None:
    if message.get_content_type() != "multipart/report":
        return None
    if str(message.get_param("report-type") or "").lower() != report_type:
        return None
    return message


def _token_in(addresses: list[str]) -> tuple[BounceToken | None, bool]:
    seen = False
    for address in addresses:
        if not address:
            continue
        token = token_from_address(address)
        if token is not None:
            return token, True
        seen = seen or bounce_address_seen(address)
    return None, seen


def _delivered_to(message: Message, envelope_recipient: str | None) -> list[str]:
    addresses = [envelope_recipient or ""]
    for name in ("Delivered-To", "X-Original-To", "Envelope-To", "To"):
        addresses += [address for _, address in getaddresses(_headers(message, name))]
    return addresses


def _failed_outcome(status: re.Match[str] | None) -> str:
    """What a "failed" recipient block's status code says about the reader's mailbox."""
    if status is None:
        return Outcome.POLICY  # no code: nothing known about the mailbox
    klass, subject, detail = status.group(1), status.group(2), status.group(3)
    if klass == "5" and (subject, detail) in _HARD_STATUSES:
        return Outcome.HARD
    if (klass == "4" and subject != "7") or (klass, subject, detail) == ("5", "2", "2"):
        return Outcome.SOFT
    return Outcome.POLICY


def _read_dsn(message: Message) -> BounceReport:
    outcomes: list[tuple[str, str, str]] = []  # (outcome, recipient, detail)
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        for block in _blocks(part)[1:]:  # the first block is about the message, not a recipient
            action = _header(block, "Action").strip().lower()
            status = _STATUS.search(_header(block, "Status"))
            final = _address_of(_header(block, "Final-Recipient"))
            recipient = _address_of(_header(block, "Original-Recipient")) or final
            diagnostic = " ".join(_header(block, "Diagnostic-Code").split())
            code = status.group(0) if status else ""
            detail = f"{code} {diagnostic}".strip()[:300]
            outcome = _failed_outcome(status) if action == "failed" else Outcome.DELAYED
            outcomes.append((outcome, recipient, detail))
            if final and final != recipient:
                outcomes.append((outcome, final, detail))
    if not outcomes:
        return BounceReport(outcome=Outcome.UNPARSED, detail="a DSN without recipients")
    # One message is one delivery: its worst verdict stands.
    rank = [Outcome.HARD, Outcome.SOFT, Outcome.POLICY, Outcome.DELAYED]
    worst = min(outcomes, key=lambda o: rank.index(Outcome(o[0])))
    return BounceReport(
        outcome=worst[0], recipients=[o[1] for o in outcomes if o[1]], detail=worst[2]
    )


def _read_feedback(message: Message) -> tuple[BounceReport, list[str]]:
    """A complaint, and the addresses a token may be in (the original's return path)."""
    recipients: list[str] = []
    senders: list[str] = []
    feedback_type = ""
    for part in message.walk():
        content_type = part.get_content_type()
        if content_type == "message/feedback-report":
            fields = _blocks(part)[0]
            feedback_type = _header(fields, "Feedback-Type").strip().lower()
            recipients += [_address_of(v) for v in _headers(fields, "Original-Rcpt-To")]
            senders += [_address_of(v) for v in _headers(fields, "Original-Mail-From")]
        elif content_type in ("message/rfc822", "text/rfc822-headers"):
            original = _blocks(part)[0]
            senders += [address for _, address in getaddresses(_headers(original, "Return-Path"))]
    feedback_type = feedback_type or "abuse"  # a missing type: ARF's default intent
    report = BounceReport(
        outcome=Outcome.COMPLAINT if feedback_type in _COMPLAINT_TYPES else Outcome.IGNORED,
        recipients=[r for r in recipients if r],
        detail=f"feedback report: {feedback_type[:50]}",
    )
    return report, senders


def _auto_reply(message: Message) -> bool:
    auto_submitted = (_header(message, "Auto-Submitted") or "no").strip().lower()
    precedence = _header(message, "Precedence").strip().lower()
    return (
        not auto_submitted.startswith("no")
        or message.get("X-Autoreply") is not None
        or message.get("X-Autorespond") is not None
        or precedence in _AUTO_PRECEDENCE
    )


#: Where the returned copy starts in a bounce in no standard form (qmail, Exim, and the
#: usual "original message follows" lines): status codes after it are the copy's text.
_RETURNED_COPY = re.compile(
    r"^(?:-+ ?below this line|-+ ?this is a copy|-+ ?original message|"
    r"-+ ?the header of the original|return-path:|received:)",
    re.IGNORECASE | re.MULTILINE,
)
#: The least harmful verdict first: when a bounce states several codes, the mildest wins.
_MILDEST = [Outcome.POLICY, Outcome.SOFT, Outcome.HARD]
#: A status code standing alone in text (not part of an IP address or a version).
_STATUS_IN_TEXT = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d]|\.\d)")


def _stated_outcome(message: Message) -> tuple[str, str]:
    """(outcome, the code) from the enhanced status codes (RFC 3463) a non-standard
    bounce states before its returned copy; HARD (flufl's word) when it states none."""
    text = ""
    for part in message.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                text = payload.decode("utf-8", "replace")
                break
    text = _RETURNED_COPY.split(text, maxsplit=1)[0]
    codes = [m for m in _STATUS_IN_TEXT.finditer(text) if m.group(1) != "2"]
    if not codes:
        return Outcome.HARD, ""
    found = [(_failed_outcome(m), m.group(0)) for m in codes]
    return min(found, key=lambda o: _MILDEST.index(Outcome(o[0])))


def _read_other(message: Message) -> BounceReport:
    from flufl.bounce import all_failures

    try:
        temporary, permanent = all_failures(message)
    except Exception:  # noqa: BLE001  a detector choking on odd input is "not understood"
        return BounceReport(outcome=Outcome.UNPARSED, detail="the bounce detectors failed")

    def addresses(found) -> list[str]:
        return [a.decode("utf-8", "replace") if isinstance(a, bytes) else a for a in found]

    if permanent:
        # flufl says "permanent" for any 5xx; the code the server gave says whether the
        # mailbox is gone, as in a DSN (a refusal as spam or too big is no hard bounce).
        outcome, code = _stated_outcome(message)
        return BounceReport(
            outcome=outcome, recipients=addresses(permanent), detail=f"bounce {code}".strip()
        )
    if temporary:
        return BounceReport(
            outcome=Outcome.SOFT, recipients=addresses(temporary), detail="temporary failure"
        )
    return BounceReport(outcome=Outcome.UNPARSED, detail="no bounce or complaint found")


def bounce_read(raw: bytes, *, envelope_recipient: str | None = None) -> BounceReport:
    """What a returned message says (see the module's contract). Never raises."""
    try:
        return _read(raw, envelope_recipient)
    except Exception as exc:  # noqa: BLE001  bad input is "not understood", never a crash
        # The exception's type only: its text may quote an address.
        logger.warning("bounce mailbox: could not read a message (%s)", type(exc).__name__)
        return BounceReport(outcome=Outcome.UNPARSED, detail="the message could not be read")


def _read(raw: bytes, envelope_recipient: str | None) -> BounceReport:
    message = _parse(raw)
    if message is None:
        return BounceReport(outcome=Outcome.UNPARSED, detail="not an email message")
    message_id = " ".join(_header(message, "Message-ID").split())[:250]
    token_addresses = _delivered_to(message, envelope_recipient)
    if _report_part(message, "delivery-status") is not None:
        report = _read_dsn(message)
    elif _report_part(message, "feedback-report") is not None:
        report, senders = _read_feedback(message)
        token_addresses = token_addresses + senders
    elif _auto_reply(message):
        report = BounceReport(outcome=Outcome.IGNORED, detail="auto-reply")
    else:
        report = _read_other(message)
    report.message_id = message_id
    report.token, report.token_seen = _token_in(token_addresses)
    return report
