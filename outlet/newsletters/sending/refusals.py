"""Refusals: is a refused message the reader's fault, or the server's?

Contract: a loop hands every refusal it cannot judge at once to `Refusals`, and
tells it when the server next takes a message (`accepted`) and when the batch
ends (`finish`). Held refusals are judged only by what the server does next, so a
server refusing everyone pauses the issue (rows untouched) instead of failing or
suppressing the list, and a run of dead addresses pauses it once, not forever.
Shared by the SMTP loop and the ESP loop's one-address-per-call fallback.
"""

from __future__ import annotations

import re
import smtplib
from collections.abc import Callable
from dataclasses import dataclass

from outlet.newsletters.sending.batch import (
    ESP_REFUSED,
    SERVER_FAULT_REFUSALS,
    MailServerDown,
    MailServerRefusing,
)
from outlet.newsletters.sending.claims import GAVE_UP, PAUSE_MARK, Claimed, OutcomeRecorder


def _smtp_code(exc: Exception, address: str) -> int | None:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, _ = exc.recipients.get(address, (None, b""))
        return code
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code
    return None


#: An enhanced status code (RFC 3463) at the start of a reply: class, subject, detail.
_ENHANCED = re.compile(rb"^\s*([245])\.(\d{1,3})\.\d{1,3}")


def _unaddressed(reply: str, email: str) -> str:
    """A server's reply with the address it quotes left out."""
    return re.sub(re.escape(email), "…", reply, flags=re.IGNORECASE) if email else reply


def _reply(exc: Exception, address: str) -> bytes:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return exc.recipients.get(address, (0, b""))[1]
    if isinstance(exc, smtplib.SMTPResponseException):
        error = exc.smtp_error
        return error if isinstance(error, bytes) else str(error).encode()
    return b""


@dataclass(slots=True)
class Held:
    """A refusal waiting for the server's next acceptance to say whose fault it was."""

    delivery: Claimed
    error: str
    temporary: bool
    #: X.7.x: the server's policy (relay, sender, content), never the reader's mailbox.
    policy: bool
    at_rcpt: bool
    #: 5.2.x at RCPT (mailbox full, over quota): a soft bounce once the server is cleared.
    full: bool


class Refusals:
    """Judges refusals and dropped connections: the reader's fault, or the server's?

    Refused at RCPT with 5.1.x (no such mailbox): failed and suppressed at once.
    Any other refusal, temporary (4xx) or permanent (5xx), is held: when the server
    next accepts a message, the held ones were about their readers: 5.2.x at RCPT
    (mailbox full, over quota) is a soft bounce, retried; temporary ones and X.7.x
    policy refusals are retried (a relay that denies outside domains but takes the
    newsroom's own must not fail or suppress anybody), other permanent RCPT refusals
    ("550 No such user" without an enhanced code) fail and suppress.
    SERVER_FAULT_REFUSALS held in a row mean the server refuses everyone: the held
    rows go back (not an attempt; see `OutcomeRecorder.release(paused_by=...)`) and
    the batch stops, with MailServerRefusing for a permanent refusal (the editor
    resumes) or MailServerDown for a temporary one (resumes by itself). Rows that
    tripped a pause before are held but do not count toward another one, so a run
    of dead addresses pauses the issue once, not forever. Held rows left when the
    batch ends are retried later, never failed on a guess. Connections dropped
    SERVER_FAULT_REFUSALS times in a row also stop the batch (MailServerDown).
    """

    def __init__(self, recorder: OutcomeRecorder) -> None:
        self.recorder = recorder
        self.held: list[Held] = []
        self.counted = 0
        self.drops = 0

    def held_deliveries(self) -> list[Claimed]:
        return [held.delivery for held in self.held]

    def refused(self, delivery: Claimed, exc: Exception) -> None:

        email = delivery.subscriber.email
        code = _smtp_code(exc, email) or 0
        reply = _reply(exc, email)
        error = f"{code} {reply.decode(errors='replace')}"
        temporary = 400 <= code < 500
        at_rcpt = isinstance(exc, smtplib.SMTPRecipientsRefused)
        enhanced = _ENHANCED.match(reply)
        subject = enhanced.group(2) if enhanced else b""
        if at_rcpt and not temporary and subject == b"1":
            self.recorder.bounces.hard_bounce(self.recorder, delivery, error)
            return
        full = at_rcpt and not temporary and subject == b"2"

        def refusing(error: str) -> MailServerDown:
            if temporary:
                return MailServerDown(f"The mail server refuses every message for now: {error}")
            stage = (
                "the sender (MAIL FROM)"
                if isinstance(exc, smtplib.SMTPSenderRefused)
                else "every recipient"
                if at_rcpt
                else "every message after its content (DATA)"
            )
            return MailServerRefusing(
                f"The mail server refused {stage}: {error}. Nobody was marked as "
                "bounced; correct the server or sender settings, then resume"
            )

        self._hold(Held(delivery, error, temporary, subject == b"7", at_rcpt, full), refusing)

    def call_refused(self, delivery: Claimed, error: str) -> None:
        """An ESP refused, whole (400/422), a call naming only this address: held with
        no verdict. Failed (not suppressed: the service judged the request, not the
        mailbox) when the service next takes a message; retried when the batch ends
        first; SERVER_FAULT_REFUSALS in a row mean the service refuses the requests."""

        def refusing(error: str) -> MailServerDown:
            return MailServerRefusing(
                f"The email service refused {SERVER_FAULT_REFUSALS} addresses in a row, "
                f"each sent alone ({error}). Nobody was marked as bounced; check the "
                "service's sending domain and sender address, then resume"
            )

        self._hold(Held(delivery, error, False, False, False, False), refusing)

    def _hold(self, held: Held, refusing: Callable[[str], MailServerDown]) -> None:
        """Hold a refusal without a verdict; the last of SERVER_FAULT_REFUSALS in a row
        pauses the issue (`refusing(why)`), the held rows handed back marked with why.
        Why is told without the address the reply quotes: it lands on other readers'
        rows and on the issue, where erasing that reader would not reach it."""
        self.held.append(held)
        if not held.delivery.tripped_pause:
            self.counted += 1
        if self.counted < SERVER_FAULT_REFUSALS:
            return
        rows, self.held, self.counted = self.held, [], 0
        why = _unaddressed(held.error, held.delivery.subscriber.email)
        self.recorder.release((h.delivery for h in rows), paused_by=why)
        raise refusing(why)

    def esp_refused(self, delivery: Claimed, status: str | None) -> None:
        """An ESP's verdict on one address (anymail_status), as for a batch in esp.py."""

        detail = f"ESP {status or 'refused'} the address"
        if status in ESP_REFUSED:
            self.recorder.bounces.hard_bounce(self.recorder, delivery, detail)
        else:
            self._retry(delivery, detail, soft_bounce=True)

    def dropped(self, error: str) -> None:
        self.drops += 1
        if self.drops >= SERVER_FAULT_REFUSALS:
            raise MailServerDown(f"The mail server keeps dropping the connection: {error}")

    def accepted(self) -> None:
        from outlet.newsletters.services import subscriber_soft_bounce_record

        self.drops = 0
        held, self.held, self.counted = self.held, [], 0
        for refusal in held:
            delivery = refusal.delivery
            if refusal.full:
                if self.recorder.retry_later(delivery, self._marked(delivery, refusal.error)):
                    subscriber_soft_bounce_record(
                        email=delivery.subscriber.email, detail=refusal.error[:300]
                    )
            elif refusal.temporary or refusal.policy:
                self._retry(delivery, refusal.error, soft_bounce=not refusal.policy)
            elif refusal.at_rcpt:
                self.recorder.bounces.hard_bounce(self.recorder, delivery, refusal.error)
            else:
                self.recorder.failed(delivery, refusal.error)

    def finish(self) -> None:
        held, self.held, self.counted = self.held, [], 0
        for refusal in held:
            self._retry(refusal.delivery, refusal.error, soft_bounce=not refusal.policy)

    def _marked(self, delivery: Claimed, error: str) -> str:
        """A row that tripped a pause keeps its mark while it is retried."""
        return PAUSE_MARK + error if delivery.tripped_pause else error

    def _retry(self, delivery: Claimed, error: str, *, soft_bounce: bool) -> None:
        from outlet.newsletters.services import subscriber_soft_bounce_record

        done = self.recorder.retry_later(delivery, self._marked(delivery, error))
        if done == GAVE_UP and soft_bounce:
            # Out of attempts: a final bounce for this message (deferrals counted once).
            subscriber_soft_bounce_record(email=delivery.subscriber.email, detail=error[:300])
