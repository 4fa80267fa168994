"""SMTP transport: one connection per batch, one round trip per message with PIPELINING.

Contract: `smtp_batch_send` sends a claimed batch message by message and records
each outcome as soon as the server has answered, so at most one message (the one
in flight on a connection that dies) can go out twice, and nobody is lost.
Unreachable servers raise MailServerDown after the unsent rows are handed back.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import time
import uuid
from typing import Any, cast

from django.conf import settings
from django.core.mail import mailers
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend

from outlet.newsletters.bounces.addresses import delivery_return_path, return_paths_on
from outlet.newsletters.sending.batch import (
    CHECK_SECONDS,
    LEASE_LOST,
    BatchResult,
    LeftUnmailable,
    MailServerDown,
    RateLimiter,
    stop_reason,
)
from outlet.newsletters.sending.claims import Claimed, OutcomeRecorder
from outlet.newsletters.sending.esp import esp_call_failed
from outlet.newsletters.sending.refusals import Refusals
from outlet.newsletters.sending.skeleton import MessageSkeleton, PersonalCopy

_CONNECTION_ERRORS = (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, OSError)


def _open(mail_connection, sender: str) -> SmtpPipe | None:
    """Connect; on Django's SMTP backend, a pipe if the server offers PIPELINING."""
    try:
        mail_connection.open()
        if isinstance(mail_connection, SmtpBackend):
            return SmtpPipe.on(mail_connection, sender)
    except _CONNECTION_ERRORS as exc:
        raise MailServerDown(f"Mail server unreachable: {exc}") from exc
    return None


def _reopen(mail_connection, sender: str) -> SmtpPipe | None:
    with contextlib.suppress(Exception):  # the old connection is gone either way
        mail_connection.close()
    mail_connection.connection = None
    return _open(mail_connection, sender)


_LEADING_DOT = re.compile(rb"^\.", re.MULTILINE)


class SmtpPipe:
    """One SMTP connection driven with PIPELINING (RFC 2920): one round trip per message.

    Message k's content, its closing dot and the next recipient's MAIL, RCPT and
    DATA go out in one write; the server's verdict on message k and its answers
    to the next envelope come back together. The next message's content is
    written only after message k's verdict has been read (and recorded by the
    caller), so at most one message is ever in flight on the connection: the
    guarantee's one possible duplicate per connection that dies.
    """

    def __init__(self, smtp: smtplib.SMTP, sender: str) -> None:
        self.smtp = smtp
        self.sender = sender
        #: The recipient whose envelope is on the wire with its replies unread.
        self.announced: str | None = None

    @classmethod
    def on(cls, mail_connection: Any, sender: str) -> SmtpPipe | None:
        """A pipe on Django's open SMTP connection; None if the server cannot pipeline."""
        smtp = cast(smtplib.SMTP, mail_connection.connection)
        smtp.ehlo_or_helo_if_needed()
        return cls(smtp, sender) if smtp.has_extn("pipelining") else None

    def _envelope(self, recipient: str, sender: str | None = None) -> bytes:
        sender = sender or self.sender
        return f"MAIL FROM:<{sender}>\r\nRCPT TO:<{recipient}>\r\nDATA\r\n".encode("ascii")

    def begin(self, recipient: str, sender: str | None = None) -> None:
        """Have the server waiting for `recipient`'s message (from `sender`, the
        connection's sender by default), or raise its refusal."""
        if self.announced != recipient:
            self.smtp.send(self._envelope(recipient, sender))
        self.announced = None
        smtp = self.smtp
        mail, rcpt, data = smtp.getreply(), smtp.getreply(), smtp.getreply()
        if mail[0] == 250 and rcpt[0] in (250, 251) and data[0] == 354:
            return
        if data[0] == 354:  # the server wants a message after all: end it empty
            smtp.send(b".\r\n")
            smtp.getreply()
        smtp.rset()
        if mail[0] != 250:
            raise smtplib.SMTPSenderRefused(mail[0], mail[1], self.sender)
        if rcpt[0] not in (250, 251):
            raise smtplib.SMTPRecipientsRefused({recipient: rcpt})
        raise smtplib.SMTPDataError(*data)

    def send(self, data: bytes, *, then: str | None = None, then_sender: str | None = None) -> None:
        """Write the message and, when given, the next recipient's envelope behind it."""
        body = _LEADING_DOT.sub(b"..", data) if data[:1] == b"." or b"\n." in data else data
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        self.smtp.send(body + b".\r\n" + (self._envelope(then, then_sender) if then else b""))
        self.announced = then

    def verdict(self) -> None:
        """The server's answer to the message just sent: accepted, or SMTPDataError."""
        code, message = self.smtp.getreply()
        if code != 250:
            raise smtplib.SMTPDataError(code, message)

    def abandon(self) -> None:
        """Drop the connection without QUIT if the server is waiting for a message's
        content (QUIT would be read as content; a message cut short is not delivered)."""
        if self.announced is not None:
            with contextlib.suppress(Exception):
                self.smtp.close()


def smtp_batch_send(
    *,
    issue_id: int,
    token: uuid.UUID,
    lease_started: float,
    claimed: list[Claimed],
    skeleton: MessageSkeleton,
    limiter: RateLimiter,
    result: BatchResult,
) -> BatchResult:
    """Send a claimed batch over one connection of the configured backend
    (Django's SMTP backend driven directly, or any other backend per message)."""
    from anymail.exceptions import AnymailError, AnymailRecipientsRefused

    with OutcomeRecorder(token, lease_started=lease_started, issue_id=issue_id) as recorder:
        recorder.skipped([d for d in claimed if not d.mailable])
        queue = [d for d in claimed if d.mailable]
        mail_connection = mailers.default
        direct = isinstance(mail_connection, SmtpBackend)
        # Each copy's own signed return path (bounces/addresses.py): only on our relay.
        verp = settings.BOUNCE_DOMAIN if direct and return_paths_on() else ""
        pipe: SmtpPipe | None = None
        upcoming: PersonalCopy | None = None  # the next message, built while the server works
        position = 0
        refusals = Refusals(recorder)
        # Rate-limited, a message costs more than the checks: check before each one (and
        # announce no envelope ahead), so an unsubscribe stops mail at the next message;
        # at full speed, within CHECK_SECONDS.
        check_every = 0.0 if limiter.per_second else CHECK_SECONDS
        left_unmailable = LeftUnmailable(
            issue_id=issue_id, newsletter=skeleton.newsletter, token=token, claimed=queue
        )
        next_check = time.monotonic() + check_every
        try:
            if queue:
                pipe = _open(mail_connection, skeleton.envelope_from)
            while position < len(queue):
                limiter.acquire()  # before the checks: a rate-limited wait can be long
                if (pipe is None or pipe.announced is None) and time.monotonic() >= next_check:
                    if reason := stop_reason(
                        recorder,
                        issue_id,
                        skeleton.newsletter,
                        queue[position:],
                        next_only=not check_every,
                        left_unmailable=left_unmailable,
                        held=refusals.held_deliveries(),
                    ):
                        result.stopped = reason
                        break
                    next_check = time.monotonic() + check_every
                delivery = queue[position]
                if not delivery.mailable:  # unsubscribed since the claim
                    recorder.skipped([delivery])
                    upcoming = None
                    position += 1
                    continue
                if not recorder.lease_held() and not recorder.renew(
                    [d for d in queue[position:] if d.mailable] + refusals.held_deliveries()
                ):
                    result.stopped = LEASE_LOST
                    break
                email = delivery.subscriber.email
                copy = upcoming or skeleton.personalise(
                    delivery_id=delivery.pk, subscriber=delivery.subscriber
                )
                upcoming = None
                sender = (
                    delivery_return_path(delivery_id=delivery.pk, email=email, domain=verp)
                    if verp
                    else None
                )
                try:
                    if pipe is not None and copy.data is not None:
                        pipe.begin(email, sender)
                        if not recorder.lease_held() and not recorder.renew(
                            [d for d in queue[position:] if d.mailable] + refusals.held_deliveries()
                        ):
                            # The server waits for the content: drop the connection
                            # without the final "." (a message cut short is not delivered).
                            pipe.announced = email
                            result.stopped = LEASE_LOST
                            break
                        following = queue[position + 1] if position + 1 < len(queue) else None
                        if (
                            following is None
                            or not following.mailable
                            or not following.subscriber.email.isascii()
                            or time.monotonic() >= next_check  # no envelope across a check
                        ):
                            following = None
                        pipe.send(
                            copy.data,
                            then=following.subscriber.email if following else None,
                            then_sender=delivery_return_path(
                                delivery_id=following.pk,
                                email=following.subscriber.email,
                                domain=verp,
                            )
                            if verp and following
                            else None,
                        )
                        if following is not None:
                            upcoming = skeleton.personalise(
                                delivery_id=following.pk, subscriber=following.subscriber
                            )
                        pipe.verdict()
                    elif direct and copy.data is not None:
                        # A server without PIPELINING: the skeleton's bytes as they are,
                        # on the backend's open connection (no re-parse of addresses).
                        smtp = cast(smtplib.SMTP, cast(SmtpBackend, mail_connection).connection)
                        smtp.sendmail(sender or skeleton.envelope_from, [email], copy.data)
                    else:
                        message = copy.email_message()
                        if sender:
                            message.extra_headers["From"] = message.from_email
                            message.from_email = sender
                        mail_connection.send_messages([message])
                except (smtplib.SMTPRecipientsRefused, smtplib.SMTPResponseException) as exc:
                    refusals.refused(delivery, exc)
                except AnymailRecipientsRefused:
                    # An ESP sent one message at a time refused this address.
                    anymail_status = getattr(message, "anymail_status", None)
                    status = anymail_status.recipients.get(email) if anymail_status else None
                    refusals.esp_refused(delivery, status.status if status else None)
                except AnymailError as exc:
                    # Before OSError: an API error is a requests.HTTPError, which is one.
                    # The call failed as a whole: the service's fault, no attempt on the
                    # reader; the rows go back (MailServerDown below) and the issue pauses.
                    raise esp_call_failed(exc) from exc
                except _CONNECTION_ERRORS as exc:
                    # The message may or may not have been accepted before the drop;
                    # retrying risks one duplicate, skipping risks a loss: retry.
                    recorder.retry_later(delivery, f"connection lost: {exc}")
                    position += 1
                    refusals.dropped(f"{exc}")
                    pipe = _reopen(mail_connection, skeleton.envelope_from)
                    continue
                else:
                    recorder.sent(delivery)
                    if refusals.held or refusals.drops:
                        refusals.accepted()
                position += 1
        except MailServerDown:
            recorder.release(queue[position:])
            raise
        finally:
            if position < len(queue) and result.stopped:
                recorder.release(queue[position:])
            if pipe is not None:
                pipe.abandon()
            with contextlib.suppress(Exception):  # closing a dead connection
                mail_connection.close()
            refusals.finish()
            recorder.finish()
    result.counts_take(recorder.counts)
    return result
