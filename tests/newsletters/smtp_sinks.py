"""SMTP servers on loopback for the sending tests: one that refuses on cue, one that counts."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections import Counter

from aiosmtpd.controller import Controller

from tests.conftest import free_port

# aiosmtpd logs every SMTP command at INFO: thousands of lines that slow the sink down.
logging.getLogger("mail.log").setLevel(logging.WARNING)

_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


def advertise_pipelining(session, hostname: str, responses: list[str]) -> list[str]:
    """Offer PIPELINING (RFC 2920) as Postfix and ESP relays do; aiosmtpd reads
    pipelined commands in order anyway, it just does not advertise them."""
    session.host_name = hostname
    return [responses[0], "250-PIPELINING", *responses[1:]]


class RefusingSmtpSink:
    """Accepts mail, except: 451 at RCPT for `temporary`, 550 for `permanent`, 554 after
    the message's content for `content_refused`, and a dropped connection during DATA
    the first time a message goes to `drop_once`. A server refusing everyone answers
    `mail_from` at MAIL FROM, `every_rcpt` at each RCPT or `after_data` after the
    content (empty: accept). `on_accept(address)` runs as each message is accepted;
    `rcpt_reply(address)`, when set, answers RCPT for an address (None: as above)."""

    def __init__(
        self, *, temporary=(), permanent=(), drop_once=(), content_refused=(), pipelining=True
    ) -> None:
        self.temporary = set(temporary)
        self.permanent = set(permanent)
        self.drop_once = set(drop_once)
        self.content_refused = set(content_refused)
        self.accepted: list[str] = []
        self.mail_from = self.every_rcpt = self.after_data = ""
        self.on_accept = None
        self.rcpt_reply = None
        sink = self

        offers_pipelining = pipelining

        class Handler:
            async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802
                if offers_pipelining:
                    return advertise_pipelining(session, hostname, responses)
                session.host_name = hostname
                return responses

            async def handle_MAIL(self, server, session, envelope, address, options):  # noqa: N802
                if sink.mail_from:
                    return sink.mail_from
                envelope.mail_from = address
                envelope.mail_options.extend(options)
                return "250 OK"

            async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: N802
                if sink.every_rcpt:
                    return sink.every_rcpt
                if sink.rcpt_reply is not None and (reply := sink.rcpt_reply(address)):
                    return reply
                if address in sink.temporary:
                    return "451 4.7.1 Try again later"
                if address in sink.permanent:
                    return "550 5.1.1 No such mailbox"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):  # noqa: N802
                for address in envelope.rcpt_tos:
                    if address in sink.drop_once:
                        sink.drop_once.discard(address)
                        server.transport.close()
                        return "421 closing"
                    if address in sink.content_refused:
                        return "554 5.7.1 Message refused"
                if sink.after_data:
                    return sink.after_data
                for address in envelope.rcpt_tos:
                    sink.accepted.append(address)
                    if sink.on_accept is not None:
                        await asyncio.to_thread(sink.on_accept, address)
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


class CountingSmtpSink:
    """Keeps only (recipient, Message-ID) per accepted message: cheap enough for thousands."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        sink = self

        class Handler:
            async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802
                return advertise_pipelining(session, hostname, responses)

            async def handle_DATA(self, server, session, envelope):  # noqa: N802
                match = _MESSAGE_ID.search(envelope.original_content or b"")
                message_id = match.group(1).decode() if match else ""
                with sink._lock:
                    for address in envelope.rcpt_tos:
                        sink.received.append((address, message_id))
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def count(self) -> int:
        with self._lock:
            return len(self.received)

    def per_recipient(self) -> Counter:
        with self._lock:
            return Counter(address for address, _ in self.received)

    def stop(self) -> None:
        self.controller.stop()
