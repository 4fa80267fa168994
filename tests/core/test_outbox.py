"""The development outbox: mail sent over SMTP to the capture is readable by staff."""

import smtplib
from email.message import EmailMessage

import pytest

from outlet.core.outbox import MaildirHandler, captured_emails, outbox_clear
from tests.conftest import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def capture(settings, tmp_path):
    from aiosmtpd.controller import Controller

    settings.OUTLET_OUTBOX_DIR = tmp_path / "outbox"
    port = free_port()
    controller = Controller(
        MaildirHandler(settings.OUTLET_OUTBOX_DIR), hostname="127.0.0.1", port=port
    )
    controller.start()
    yield port
    controller.stop()


def _send(port: int, subject: str) -> None:
    message = EmailMessage()
    message["From"] = "site@outlet.test"
    message["To"] = "reader@example.org"
    message["Subject"] = subject
    message.set_content("Confirm: http://127.0.0.1:8000/newsletter/confirm/abc/")
    message.add_alternative("<p><a href='http://127.0.0.1:8000/x'>Confirm</a></p>", subtype="html")
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        smtp.send_message(message)


def test_staff_read_captured_mail_in_the_browser(capture, admin_client, settings):
    settings.DEBUG = True
    _send(capture, "Please confirm your subscription")

    listing = admin_client.get("/_outbox/")
    key = captured_emails()[0].key
    detail = admin_client.get(f"/_outbox/{key}/")
    html = admin_client.get(f"/_outbox/{key}/html")

    assert b"Please confirm your subscription" in listing.content
    assert b"reader@example.org" in listing.content
    assert b"newsletter/confirm/abc" in detail.content
    assert b"Confirm</a>" in html.content
    assert "default-src 'none'" in html["Content-Security-Policy"]


def test_outbox_is_hidden_from_readers_and_in_production(capture, client, admin_client, settings):
    _send(capture, "Secret")
    settings.DEBUG = True
    assert client.get("/_outbox/").status_code == 302  # to the login page

    settings.DEBUG = False
    assert admin_client.get("/_outbox/").status_code == 404
    outbox_clear()
    assert captured_emails() == []


def test_the_outbox_keeps_the_bytes_as_sent(capture, settings):
    long_link = "<http://127.0.0.1:8000/newsletter/unsubscribe/" + "a1b2c3d4" * 12 + "/>"
    raw = (
        "From: site@outlet.test\r\nTo: reader@example.org\r\nSubject: Headers\r\n"
        f"List-Unsubscribe: {long_link}\r\n"
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\nBody.\r\n"
    ).encode()
    with smtplib.SMTP("127.0.0.1", capture) as smtp:
        smtp.sendmail("site@outlet.test", ["reader@example.org", "copy@example.org"], raw)

    stored = next((settings.OUTLET_OUTBOX_DIR / "new").iterdir()).read_bytes()
    assert f"List-Unsubscribe: {long_link}".encode() in stored  # not re-folded or encoded
    captured = captured_emails()[0]
    assert captured.to == "reader@example.org, copy@example.org"
    assert captured.message["List-Unsubscribe"] == long_link
