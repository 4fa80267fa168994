"""
The development outbox: `make run` captures every email the site sends.

An aiosmtpd server on loopback stores each message in a Maildir under
var/outbox; staff read them at /_outbox/ while DEBUG is on, so a reader in the
demo can click a confirmation link without a real mailbox.
"""

from __future__ import annotations

import mailbox
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from django.conf import settings


def outbox_maildir(path: Path | None = None) -> mailbox.Maildir:
    return mailbox.Maildir(path or settings.OUTLET_OUTBOX_DIR, factory=None, create=True)


class MaildirHandler:
    """aiosmtpd handler: accept any message for any recipient, file it in the Maildir."""

    def __init__(self, path: Path):
        self.maildir = outbox_maildir(path)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        # The bytes as sent, with the envelope recipients in a first header: re-serialising
        # through the email package would re-fold long headers (List-Unsubscribe became
        # RFC 2047 encoded-words), so the outbox would not show what was really sent.
        recipients = ", ".join(envelope.rcpt_tos).replace("\r", "").replace("\n", "")
        header = f"X-Outlet-Envelope-To: {recipients}\r\n".encode()
        self.maildir.add(header + envelope.original_content)
        return "250 Message accepted for delivery"


@dataclass(frozen=True)
class CapturedEmail:
    key: str
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message.get("Subject", ""))

    @property
    def to(self) -> str:
        return str(self.message.get("X-Outlet-Envelope-To") or self.message.get("To", ""))

    @property
    def sender(self) -> str:
        return str(self.message.get("From", ""))

    @property
    def date(self) -> str:
        return str(self.message.get("Date", ""))

    def body(self, subtype: str) -> str | None:
        part = self.message.get_body(preferencelist=(subtype,))
        return part.get_content() if part is not None else None  # type: ignore[attr-defined]


def _parse(data: bytes) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(data)  # type: ignore[return-value]


def captured_emails(limit: int = 200) -> list[CapturedEmail]:
    """The newest captured messages first."""
    box = outbox_maildir()
    # Maildir keys start with the delivery time, so their order is the arrival order.
    keys = sorted(box.keys(), reverse=True)
    return [CapturedEmail(key, _parse(box.get_bytes(key))) for key in keys[:limit]]


def captured_email(key: str) -> CapturedEmail | None:
    box = outbox_maildir()
    try:
        return CapturedEmail(key, _parse(box.get_bytes(key)))
    except KeyError:
        return None


def outbox_clear() -> None:
    box = outbox_maildir()
    box.clear()
