"""Errors reach Sentry when SENTRY_DSN is set, scrubbed; nothing of Sentry runs otherwise.

A child process raises in a view with the DSN pointing at an HTTP server of the test's
own that speaks Sentry's envelope endpoint (POST /api/<project>/envelope/)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.conf import settings

from tests.conftest import free_port

ADDRESS = "sentry.reader@example.org"


class SentryServer:
    """Keeps every envelope posted to it, decompressed."""

    def __init__(self) -> None:
        self.envelopes: list[tuple[str, bytes]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "br":
                    import brotli

                    body = brotli.decompress(body)
                server.envelopes.append((self.path, body))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def events(self) -> list[dict]:
        found = []
        for _path, body in self.envelopes:
            lines = body.split(b"\n")
            for header, payload in zip(lines[1::2], lines[2::2], strict=False):
                if json.loads(header).get("type") == "event":
                    found.append(json.loads(payload))
        return found


@pytest.fixture
def sentry_server():
    server = SentryServer()
    yield server
    server.httpd.shutdown()


def _probe(**env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "tests.core.sentry_probe"],
        cwd=settings.BASE_DIR,
        env={**os.environ, "PROBE_ADDRESS": ADDRESS, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout


def test_an_error_in_a_view_reaches_sentry_scrubbed(sentry_server):
    dsn = f"http://publickey@127.0.0.1:{sentry_server.port}/42"
    out = _probe(SENTRY_DSN=dsn, OUTLET_RELEASE="outlet@test-1", SENTRY_ENVIRONMENT="staging")

    assert "status=500" in out
    assert all(path == "/api/42/envelope/" for path, _ in sentry_server.envelopes)
    events = sentry_server.events()
    error = next(e for e in events if e.get("exception"))
    assert error["exception"]["values"][-1]["type"] == "RuntimeError"
    assert error["release"] == "outlet@test-1" and error["environment"] == "staging"
    assert "[email]" in error["exception"]["values"][-1]["value"]
    raw = b"".join(body for _, body in sentry_server.envelopes).decode()
    for secret in (ADDRESS, "sign-in-token-value", settings.STRIPE_SECRET_KEY, "sessionid=abc"):
        assert secret not in raw, secret


def test_without_a_dsn_sentry_is_never_imported():
    out = _probe(SENTRY_DSN="")
    assert "status=500" in out
    assert "sentry_sdk imported=False" in out
