"""Every message that leaves by SMTP is DKIM-signed, and dkimpy's verifier, given only the
DNS record `dkim_keygen` prints, accepts each one as it arrived at a real SMTP server."""

from __future__ import annotations

import re
import threading
from io import StringIO

import dkim
import pytest
from aiosmtpd.controller import Controller
from django.core import mail
from django.core.management import call_command

from outlet.core.dkim_config import dkim_signer
from outlet.donations.emails import dispute_opened_message
from outlet.newsletters.emails import confirmation_email
from outlet.newsletters.issues import issue_plan, issue_send_now, issue_sending_check
from outlet.newsletters.models import Issue
from outlet.newsletters.sending import batch_send
from tests.conftest import free_port
from tests.factories import ArticleFactory, DonationFactory, IssueFactory, SubscriberFactory
from tests.newsletters.smtp_sinks import advertise_pipelining

pytestmark = pytest.mark.django_db(transaction=True)


class RawSink:
    """A real SMTP server on loopback that keeps each message's bytes as received."""

    def __init__(self, *, pipelining: bool) -> None:
        self.messages: list[tuple[list[str], bytes]] = []
        lock = threading.Lock()
        sink = self

        class Handler:
            async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802
                if pipelining:
                    return advertise_pipelining(session, hostname, responses)
                session.host_name = hostname
                return responses

            async def handle_DATA(self, server, session, envelope):  # noqa: N802
                with lock:
                    sink.messages.append((list(envelope.rcpt_tos), envelope.original_content))
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


def published_key(tmp_path, *extra: str) -> tuple[str, bytes]:
    """A key made by `dkim_keygen`: (its file, the TXT record as a resolver returns it)."""
    out = StringIO()
    path = tmp_path / "dkim.pem"
    call_command(
        "dkim_keygen",
        "--selector=news2026",
        "--domain=outlet.test",
        f"--output={path}",
        *extra,
        stdout=out,
        stderr=StringIO(),
    )
    name, strings = out.getvalue().strip().split(" IN TXT ", 1)
    assert name == "news2026._domainkey.outlet.test"
    parts = re.findall(r'"([^"]*)"', strings)
    assert all(len(part) <= 255 for part in parts)
    return str(path), "".join(parts).encode("ascii")


@pytest.fixture
def signing(settings, tmp_path, request):
    """DKIM on, mail to a raw sink; yields (sink, dnsfunc)."""
    extra = getattr(request, "param", ())
    key_file, record = published_key(tmp_path, *[e for e in extra if e.startswith("--")])
    sink = RawSink(pipelining="no-pipelining" not in extra)
    settings.EMAIL_BACKEND = "outlet.core.smtp_backend.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.DKIM_SELECTOR, settings.DKIM_DOMAIN = "news2026", "outlet.test"
    with open(key_file) as file:
        settings.DKIM_PRIVATE_KEY = file.read()

    def dnsfunc(name, timeout=5):
        assert name == b"news2026._domainkey.outlet.test."
        return record

    try:
        yield sink, dnsfunc
    finally:
        sink.stop()


def send_issue(daily, readers: int = 6) -> Issue:
    SubscriberFactory.create_batch(readers, newsletters=[daily])
    SubscriberFactory(newsletters=[daily], name="Zoë Ångström")  # UTF-8 in the greeting
    issue = IssueFactory(newsletter=daily, subject="Maps, money and the week ahead")
    issue.issue_articles.create(article=ArticleFactory(), position=1)
    issue_send_now(issue=issue)
    issue.refresh_from_db()
    issue_plan(issue=issue)
    while batch_send(issue_id=issue.pk, size=3).claimed:
        pass
    issue_sending_check(issue_id=issue.pk)
    issue.refresh_from_db()
    return issue


def signed_fields(message: bytes) -> list[str]:
    signature = dkim.DKIM(message)
    ((_, value),) = [(n, v) for n, v in signature.headers if n.lower() == b"dkim-signature"]
    tags = dkim.util.parse_tag_value(value)
    return tags[b"h"].decode().split(":")


@pytest.mark.parametrize(
    "signing", [(), ("no-pipelining",)], indirect=True, ids=["pipelined", "plain"]
)
def test_every_issue_copy_and_transactional_message_verifies_against_the_published_key(
    signing, daily
):
    sink, dnsfunc = signing

    issue = send_issue(daily)
    confirmation_email(SubscriberFactory(email="new.reader@example.com")).send()
    dispute_opened_message(donation=DonationFactory(), recipients=["editor@outlet.test"]).send()

    assert issue.status == Issue.Status.SENT
    assert len(sink.messages) == 7 + 2
    for _recipients, message in sink.messages:
        assert message.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;")
        assert dkim.verify(message, dnsfunc=dnsfunc), message[:600]
    copies = [m for _, m in sink.messages if b"List-Unsubscribe:" in m]
    assert len(copies) == 7
    for copy in copies:
        fields = signed_fields(copy)
        assert {"list-unsubscribe", "list-unsubscribe-post", "list-id", "to", "from"} <= set(fields)
        assert {"subject", "date", "message-id", "mime-version", "content-type", "reply-to"} <= set(
            fields
        )


def test_a_copy_changed_in_transit_fails_verification(signing, daily):
    sink, dnsfunc = signing
    send_issue(daily, readers=1)
    (_, message), (_, other) = sink.messages
    assert dkim.verify(message, dnsfunc=dnsfunc)
    header = re.compile(rb"^List-Unsubscribe: [^\r]*\r\n", re.MULTILINE)

    # Another reader's unsubscribe link swapped in, the body edited, a second From added.
    swapped = header.sub(lambda _: header.search(other).group(0), message, count=1)
    edited = message.replace(b"</body>", b"<p>Send money to ...</p></body>", 1)
    extra_from = b"From: Someone Else <x@attacker.example>\r\n" + message
    for tampered in (swapped, edited, extra_from):
        assert tampered != message
        assert not dkim.verify(tampered, dnsfunc=dnsfunc)


@pytest.mark.parametrize("signing", [("--ed25519",)], indirect=True)
def test_an_ed25519_key_signs_verifiably(signing, daily):
    sink, dnsfunc = signing
    send_issue(daily, readers=2)
    confirmation_email(SubscriberFactory(email="new.reader@example.com")).send()

    assert len(sink.messages) == 4
    for _, message in sink.messages:
        assert b"a=ed25519-sha256" in message.split(b"\r\n\r\n", 1)[0]
        assert dkim.verify(message, dnsfunc=dnsfunc)


def test_nothing_is_signed_through_any_other_backend(signing, settings, daily):
    """An ESP signs with its own key: outlet adds no signature of its own there."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert dkim_signer() is None
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    assert dkim_signer() is None

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    send_issue(daily, readers=2)

    assert len(mail.outbox) == 3
    for message in mail.outbox:
        assert b"DKIM-Signature" not in message.message().as_bytes()
