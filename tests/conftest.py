"""Fixtures shared by the suite: a real Celery worker process, headless Chromium."""

from __future__ import annotations

import contextlib
import os
import smtplib
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection

BASE_DIR = Path(settings.BASE_DIR)


@pytest.fixture(autouse=True, scope="session")
def _forget_dead_runs_counters() -> None:
    """Earlier runs' counter files would be summed at every /metrics the suite reads."""
    from outlet.core.metrics.files import metrics_files_clear

    metrics_files_clear(dead_only=True)


@pytest.fixture(autouse=True)
def _clear_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


class MailServerDown:
    """Every message is refused as by a server that hangs up (a temporary fault), until
    `up()`; `tries` counts the sends attempted meanwhile."""

    def __init__(self) -> None:
        from django.core.mail.backends.locmem import EmailBackend

        self.tries = 0
        self._patch = pytest.MonkeyPatch()

        def refuse(backend, messages):
            self.tries += 1
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")

        self._patch.setattr(EmailBackend, "send_messages", refuse)

    def up(self) -> None:
        self._patch.undo()


@pytest.fixture
def mail_server_down(settings) -> Iterator[MailServerDown]:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    server = MailServerDown()
    yield server
    server.up()


def test_database_url() -> str:
    """The URL of the database the tests are using, for child processes to share it."""
    params = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{params['NAME']}"
    user = params.get("USER") or ""
    password = f":{params['PASSWORD']}" if params.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    host = params.get("HOST") or "127.0.0.1"
    port = f":{params['PORT']}" if params.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{params['NAME']}"


class WorkerProcess:
    """A real `celery worker` child process on the test database and broker."""

    def __init__(
        self, *, queues: str = "default,mail,bulk,purge", concurrency: int = 1, extra_env=None
    ):
        self.hostname = f"test-{uuid.uuid4().hex[:8]}@localhost"
        env = {**os.environ, "DATABASE_URL": test_database_url(), **(extra_env or {})}
        self.log_path = Path(settings.VAR_DIR) / f"worker-{self.hostname.split('@')[0]}.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop())
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "outlet",
                "worker",
                "-Q",
                queues,
                "--concurrency",
                str(concurrency),
                "--hostname",
                self.hostname,
                "--loglevel",
                "INFO",
                "--without-mingle",
                "--without-gossip",
            ],
            cwd=BASE_DIR,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        from outlet.core.models import Heartbeat

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if Heartbeat.objects.filter(name=self.hostname).exists():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"worker did not start; log:\n{self.log_path.read_text()[-4000:]}")

    def kill(self, sig: int = 9) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.kill(15)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill(9)
                self.process.wait()
        self.log.close()


@pytest.fixture
def celery_worker_process(transactional_db) -> Iterator[WorkerProcess]:
    """Start one real worker; the test must use committed data (transactional_db)."""
    worker = WorkerProcess()
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.stop()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on port {port}")


class SmtpSink:
    """A real SMTP server on loopback that keeps every message it accepts."""

    def __init__(self) -> None:
        import threading

        from aiosmtpd.controller import Controller

        self.messages: list = []
        self._lock = threading.Lock()
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802
                from email import policy
                from email.parser import BytesParser

                message = BytesParser(policy=policy.default).parsebytes(envelope.original_content)
                with sink._lock:
                    sink.messages.append((list(envelope.rcpt_tos), message))
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def recipients(self) -> list[str]:
        with self._lock:
            return [rcpt for rcpts, _ in self.messages for rcpt in rcpts]

    def to(self, address: str) -> list:
        with self._lock:
            return [m for rcpts, m in self.messages if address in rcpts]

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()

    def stop(self) -> None:
        self.controller.stop()


@pytest.fixture
def smtp_sink(settings) -> Iterator[SmtpSink]:
    """Mail from this process (and from workers given `sink.url` as EMAIL_URL) lands here."""
    sink = SmtpSink()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = sink.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture(scope="session")
def localstripe_server() -> Iterator[str]:
    """One localstripe process for the session, started from scratch on a free port."""
    port = free_port()
    log = open(Path(settings.VAR_DIR) / "localstripe.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [
            sys.executable,
            *("-m", "outlet.core.localstripe_server", "--port", str(port), "--from-scratch"),
        ],
        # From scratch and kept nowhere: no other localstripe's objects, none left behind.
        env={k: v for k, v in os.environ.items() if k != "LOCALSTRIPE_STORE"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=10)
        log.close()


@pytest.fixture
def localstripe(localstripe_server, settings) -> str:
    """Point the site's Stripe client and Stripe.js at the session's localstripe."""
    settings.STRIPE_API_BASE = localstripe_server
    settings.STRIPE_JS_URL = f"{localstripe_server}/js.stripe.com/v3/"
    return localstripe_server


@pytest.fixture
def bilingual(settings) -> Iterator[None]:
    """A site in Spanish (the default, unprefixed) and English (under /en/), as with
    SITE_LANGUAGES=es,en; Spanish active, as on a request for an unprefixed page."""
    from django.urls import clear_url_caches
    from django.utils import translation

    settings.LANGUAGE_CODE = "es"
    settings.LANGUAGES = [("es", "español"), ("en", "English")]
    clear_url_caches()  # the resolver keeps each language's prefix once worked out
    with translation.override("es"):
        yield
    settings.LANGUAGE_CODE = "en"
    settings.LANGUAGES = [("en", "English")]
    clear_url_caches()
