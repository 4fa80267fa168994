"""deploy/gunicorn.conf.py with a real gunicorn: its access lines are scrubbed, answers
carry X-Request-ID, and a worker that ends is marked dead for prometheus-client."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

from tests import conftest
from tests.conftest import free_port, wait_for_port

pytestmark = pytest.mark.django_db(transaction=True)

CONFIG = Path(settings.BASE_DIR) / "deploy" / "gunicorn.conf.py"
TOKEN = "eyJyIjo0fQ:1tAbCd:Zx9yW8vU7tS6rQ5pO4nM3lK2"


def _workers(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


def _wait(condition, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_gunicorn_with_the_shipped_config(tmp_path):
    port = free_port()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    log = tmp_path / "gunicorn.log"
    env = {
        **os.environ,
        "DATABASE_URL": conftest.test_database_url(),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "LOG_FORMAT": "json",
    }
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(CONFIG), "outlet.wsgi",
             "--bind", f"127.0.0.1:{port}", "--workers", "1", "--access-logfile", "-"],
            cwd=settings.BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        wait_for_port(port, timeout=60)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/account/sign-in/{TOKEN}/?email=reader@example.com",
            headers={"X-Request-ID": "edge-1234"},
        )
        try:
            response = urllib.request.urlopen(request, timeout=30)
            status, request_id = response.status, response.headers["X-Request-ID"]
        except urllib.error.HTTPError as error:
            status, request_id = error.code, error.headers["X-Request-ID"]
        assert status < 500 and request_id == "edge-1234"
        # The worker writes its access line after answering.
        assert _wait(lambda: "/account/sign-in/" in log.read_text()), log.read_text()[-2000:]

        # A worker that ends: its live gauges are dropped by the master's child_exit hook.
        (worker,) = _workers(process.pid)
        live_gauge = metrics_dir / f"gauge_liveall_{worker}.db"
        live_gauge.write_bytes(b"")
        os.kill(worker, signal.SIGKILL)
        assert _wait(lambda: not live_gauge.exists()), log.read_text()[-2000:]
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)

    text = log.read_text()
    assert "/account/sign-in/[token]/" in text, text[-2000:]
    assert TOKEN not in text and "reader@example.com" not in text
