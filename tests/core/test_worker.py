"""A task travels through the real broker and runs in a real worker process."""

import time

import pytest

from outlet.core.models import Heartbeat
from outlet.core.tasks import beat_heartbeat_task

pytestmark = pytest.mark.worker


def test_task_through_broker_runs_in_worker_process(celery_worker_process):
    Heartbeat.objects.filter(component=Heartbeat.Component.BEAT).delete()

    beat_heartbeat_task.delay()

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if Heartbeat.objects.filter(component=Heartbeat.Component.BEAT).exists():
            break
        time.sleep(0.2)
    assert Heartbeat.objects.filter(component=Heartbeat.Component.BEAT, name="beat").exists()


def test_worker_heartbeat_makes_healthz_report_worker_alive(celery_worker_process, client):
    body = client.get("/healthz").json()

    assert body["checks"]["worker"]["ok"] is True
    assert celery_worker_process.hostname in body["checks"]["worker"]["detail"]
