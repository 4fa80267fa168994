"""Fixtures shared by the suite: a real Celery worker process, headless Chromium."""

from __future__ import annotations

import os
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


@pytest.fixture(autouse=True)
def _clear_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


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

    def __init__(self, *, queues: str = "default,mail,bulk", concurrency: int = 1, extra_env=None):
        self.hostname = f"test-{uuid.uuid4().hex[:8]}@localhost"
        env = {**os.environ, "DATABASE_URL": test_database_url(), **(extra_env or {})}
        self.log_path = Path(settings.VAR_DIR) / f"worker-{self.hostname.split('@')[0]}.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop())
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "outlet", "worker", "-Q", queues,
             "--concurrency", str(concurrency), "--hostname", self.hostname,
             "--loglevel", "INFO", "--without-mingle", "--without-gossip"],
            cwd=BASE_DIR, env=env, stdout=self.log, stderr=subprocess.STDOUT,
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
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass

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
