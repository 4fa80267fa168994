from datetime import timedelta

import pytest
from django.utils import timezone

from outlet.core.models import Heartbeat

pytestmark = pytest.mark.django_db


def test_healthz_is_200_when_every_required_part_is_alive(client):
    Heartbeat.objects.create(component="worker", name="w1@host", last_seen=timezone.now())

    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) >= {"database", "cache", "broker", "worker"}


def test_healthz_names_a_dead_worker_with_503(client):
    Heartbeat.objects.create(
        component="worker", name="w1@host", last_seen=timezone.now() - timedelta(minutes=10)
    )

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["failing"] == ["worker"]


def test_healthz_names_a_broker_that_is_down_without_hanging(client, settings):
    Heartbeat.objects.create(component="worker", name="w1@host", last_seen=timezone.now())
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1

    started = timezone.now()
    response = client.get("/healthz")
    elapsed = (timezone.now() - started).total_seconds()

    assert response.status_code == 503
    assert "broker" in response.json()["failing"]
    assert elapsed < 10
