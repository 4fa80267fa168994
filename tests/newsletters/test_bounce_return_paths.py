"""Return paths (VERP): each newsletter copy and each reader's transactional message goes
out from its own signed bounces+<token>@BOUNCE_DOMAIN, and the token cannot be turned
on another address."""

from __future__ import annotations

import re
from email import policy
from email.parser import BytesParser

import pytest
from aiosmtpd.controller import Controller
from django.core import mail

from outlet.newsletters.bounces.addresses import (
    delivery_return_path,
    message_return_path,
    token_from_address,
)
from outlet.newsletters.issues import issue_send_now
from outlet.newsletters.models import Delivery
from outlet.newsletters.sending import batch_send, deliveries_plan
from outlet.readers.emails import sign_in_email
from tests.conftest import free_port
from tests.factories import IssueFactory, SubscriberFactory
from tests.newsletters.smtp_sinks import advertise_pipelining

pytestmark = pytest.mark.django_db

_LOCAL_PART = re.compile(r"bounces\+[a-z0-9-]+")


@pytest.fixture(autouse=True)
def _bounce_domain(settings):
    settings.BOUNCE_DOMAIN = "bounces.outlet.test"


def test_a_delivery_token_is_signed_for_its_address_only():
    address = delivery_return_path(delivery_id=123456789, email="Sam@Example.org")
    local, _, domain = address.partition("@")

    assert domain == "bounces.outlet.test"
    assert _LOCAL_PART.fullmatch(local) and len(local) <= 64
    token = token_from_address(address.upper())  # MTAs may fold case
    assert token is not None and token.delivery_id == 123456789
    assert token.signed_for("sam@example.org")
    assert not token.signed_for("someone.else@example.org")


def test_a_token_changed_by_hand_or_at_another_domain_is_not_ours(settings):
    address = delivery_return_path(delivery_id=7, email="sam@example.org")
    token = token_from_address(address)
    assert token is not None
    tampered = token_from_address(address.replace("bounces+d7-", "bounces+d8-"))
    assert tampered is not None and not tampered.signed_for("sam@example.org")
    assert token_from_address(address.replace("outlet.test", "elsewhere.test")) is None
    settings.SECRET_KEY = "another-" + "k" * 60
    assert not token.signed_for("sam@example.org")


def test_each_transactional_message_gets_its_own_token_for_its_reader():
    first, second = (message_return_path(email="sam@example.org") for _ in range(2))
    assert first != second
    for address in (first, second):
        token = token_from_address(address)
        assert token is not None and token.delivery_id is None
        assert token.signed_for("sam@example.org")


def test_a_reader_email_goes_out_from_its_return_path_and_shows_the_outlets_from(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    from outlet.readers.models import Reader

    reader = Reader.objects.create(email="sam@example.org")
    sign_in_email(reader=reader, token="t0k3n").send()

    (sent,) = mail.outbox
    token = token_from_address(sent.from_email)
    assert token is not None and token.signed_for("sam@example.org")
    assert sent.message()["From"] == settings.DEFAULT_FROM_EMAIL


def test_without_a_bounce_domain_mail_keeps_the_outlets_sender(settings):
    settings.BOUNCE_DOMAIN = ""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    from outlet.readers.models import Reader

    sign_in_email(reader=Reader.objects.create(email="sam@example.org"), token="t").send()
    assert mail.outbox[0].from_email == settings.DEFAULT_FROM_EMAIL


def test_through_an_email_provider_there_is_no_return_path_of_ours(settings):
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    from outlet.readers.models import Reader

    message = sign_in_email(reader=Reader.objects.create(email="sam@example.org"), token="t")
    assert message.from_email == settings.DEFAULT_FROM_EMAIL


class EnvelopeSink:
    """A pipelining SMTP server on loopback keeping each message's envelope."""

    def __init__(self) -> None:
        self.envelopes: list[tuple[str, list[str], bytes]] = []
        sink = self

        class Handler:
            async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802
                return advertise_pipelining(session, hostname, responses)

            async def handle_DATA(self, server, session, envelope):  # noqa: N802
                sink.envelopes.append(
                    (envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
                )
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()


@pytest.mark.parametrize("pipelining", [True, False])
def test_each_newsletter_copy_goes_out_from_its_deliverys_return_path(
    settings, daily, pipelining, monkeypatch
):
    sink = EnvelopeSink()
    if not pipelining:
        monkeypatch.setattr(
            "outlet.newsletters.sending.smtp.SmtpPipe.on", classmethod(lambda cls, *a: None)
        )
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
        readers = SubscriberFactory.create_batch(5, newsletters=[daily])
        issue = IssueFactory(newsletter=daily)
        issue_send_now(issue=issue)
        deliveries_plan(issue=issue)

        assert batch_send(issue_id=issue.pk).sent == 5
    finally:
        sink.controller.stop()

    assert sorted(rcpt for _, (rcpt,), _ in sink.envelopes) == sorted(r.email for r in readers)
    for mail_from, (rcpt,), content in sink.envelopes:
        delivery = Delivery.objects.get(issue=issue, subscriber__email=rcpt)
        token = token_from_address(mail_from)
        assert token is not None and token.delivery_id == delivery.pk
        assert token.signed_for(rcpt)
        assert daily.from_email in BytesParser(policy=policy.default).parsebytes(content)["From"]
