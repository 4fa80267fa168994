"""The IMAP bounce mailbox against a real server: Dovecot (Debian's dovecot-imapd) in a
private configuration on a free loopback port, IMAP over TLS with a self-signed
certificate the client is told to trust. Skipped, saying so, when Dovecot is missing or
cannot run here (it needs root to start its login processes as their own users)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from outlet.core.addresses import email_digest
from outlet.newsletters.bounces.addresses import delivery_return_path
from outlet.newsletters.bounces.mailbox import imap_poll
from outlet.newsletters.bounces.models import BounceMessage
from outlet.newsletters.models import Delivery, Suppression
from tests.conftest import free_port
from tests.factories import IssueFactory, SubscriberFactory

DOVECOT = "/usr/sbin/dovecot"
FIXTURES = Path(__file__).parent / "fixtures" / "bounces"

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not Path(DOVECOT).exists(), reason="Dovecot is missing: apt-get install dovecot-imapd"
    ),
    pytest.mark.skipif(os.geteuid() != 0, reason="a private Dovecot needs root"),
]

CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
auth_mechanisms = plain
mail_location = maildir:{root}/mail
first_valid_uid = 1
passdb {{
  driver = static
  args = password=bounce-secret
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={root}/home
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
"""


class Dovecot:
    def __init__(self, root: Path) -> None:
        self.root, self.port = root, free_port()
        if root.exists():
            shutil.rmtree(root)
        for sub in ("run", "state", "home", "mail/new", "mail/cur", "mail/tmp"):
            (root / sub).mkdir(parents=True)
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
             "-keyout", str(root / "key.pem"), "-out", str(root / "cert.pem")],
            check=True, capture_output=True,
        )  # fmt: skip
        (root / "dovecot.conf").write_text(CONFIG.format(root=root, port=self.port))
        for path in [root, *root.rglob("*")]:
            if path.is_dir():
                path.chmod(0o777)
        for sub in ("home", "mail", "mail/new", "mail/cur", "mail/tmp"):
            shutil.chown(root / sub, "nobody", "nogroup")
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.root / "dovecot.conf")],
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.skip(f"Dovecot did not start: {self.process.stderr.read()[-500:]!r}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.2)
        self.stop()
        pytest.skip("Dovecot did not listen within 15 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)

    def deliver(self, name: str, raw: bytes) -> None:
        """As Postfix's virtual(8) would: write in tmp/, rename into new/."""
        tmp = self.root / "mail" / "tmp" / name
        tmp.write_bytes(raw)
        shutil.chown(tmp, "nobody", "nogroup")
        tmp.rename(self.root / "mail" / "new" / name)

    @property
    def url(self) -> str:
        return f"imaps://bounces:bounce-secret@localhost:{self.port}/INBOX"


@pytest.fixture
def dovecot(settings, monkeypatch):
    if not shutil.which("openssl"):
        pytest.skip("openssl is missing (the test's certificate)")
    # Not under VAR_DIR: that is private to root (0700), and Dovecot reads the mail as nobody.
    outside = Path(tempfile.mkdtemp(prefix="outlet-dovecot-"))
    outside.chmod(0o755)
    server = Dovecot(outside / "dovecot")
    monkeypatch.setenv("SSL_CERT_FILE", str(server.root / "cert.pem"))  # trust it, and only it
    server.start()
    yield server
    server.stop()
    shutil.rmtree(outside, ignore_errors=True)


def test_the_imap_poller_takes_a_dsn_in_once_across_a_server_restart(dovecot, daily, settings):
    settings.BOUNCE_DOMAIN = "bounces.outlet.test"
    reader = SubscriberFactory(email="gone@example.org", newsletters=[daily])
    delivery = Delivery.objects.create(
        issue=IssueFactory(newsletter=daily), subscriber=reader, status=Delivery.Status.SENT
    )
    return_path = delivery_return_path(delivery_id=delivery.pk, email=reader.email)
    raw = (FIXTURES / "dsn-5.1.1-after-acceptance.eml").read_text()
    raw = raw.replace("{recipient}", reader.email).replace("{return_path}", return_path)
    dovecot.deliver("1.dsn", raw.encode())

    assert dict(imap_poll(url=dovecot.url, keep=True)) == {"hard": 1}
    assert not imap_poll(url=dovecot.url, keep=True)  # seen: not fetched again

    dovecot.stop()
    dovecot.start()
    assert not imap_poll(url=dovecot.url, keep=True)  # the \\Seen flag outlived the restart

    # A worker that died after taking it in but before flagging it: the copy comes back
    # unseen, and intake knows it.
    dovecot.deliver("2.dsn-again", raw.encode())
    assert dict(imap_poll(url=dovecot.url, keep=True)) == {"hard": 1}
    assert BounceMessage.objects.count() == 1
    assert Suppression.objects.filter(email_hash=email_digest(reader.email)).count() == 1


def test_the_imap_poller_refuses_a_server_whose_certificate_it_does_not_trust(dovecot, monkeypatch):
    import ssl

    monkeypatch.setenv("SSL_CERT_FILE", "/nonexistent.pem")
    monkeypatch.setenv("SSL_CERT_DIR", "/nonexistent")

    with pytest.raises(ssl.SSLCertVerificationError):
        imap_poll(url=dovecot.url, keep=True)


def test_a_dsn_someone_opened_in_a_mail_client_is_still_taken_in(dovecot, daily, settings):
    """The bounce mailbox is a mailbox: an editor looking into it with a mail client marks
    what they open \\Seen. That is not "taken in": the bounce must still act."""
    import imaplib
    import ssl

    settings.BOUNCE_DOMAIN = "bounces.outlet.test"
    reader = SubscriberFactory(email="gone@example.org", newsletters=[daily])
    delivery = Delivery.objects.create(
        issue=IssueFactory(newsletter=daily), subscriber=reader, status=Delivery.Status.SENT
    )
    return_path = delivery_return_path(delivery_id=delivery.pk, email=reader.email)
    raw = (FIXTURES / "dsn-5.1.1-after-acceptance.eml").read_text()
    raw = raw.replace("{recipient}", reader.email).replace("{return_path}", return_path)
    dovecot.deliver("1.dsn", raw.encode())
    client = imaplib.IMAP4_SSL("localhost", dovecot.port, ssl_context=ssl.create_default_context())
    client.login("bounces", "bounce-secret")
    client.select("INBOX")
    client.fetch("1", "(RFC822)")  # the editor reads it: \Seen
    client.logout()

    assert dict(imap_poll(url=dovecot.url, keep=True)) == {"hard": 1}
    assert not imap_poll(url=dovecot.url, keep=True)  # taken in: not again
    assert Suppression.objects.filter(email_hash=email_digest(reader.email)).exists()
