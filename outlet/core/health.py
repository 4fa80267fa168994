"""
Health checks behind /healthz: database, cache, broker and worker.

Each check is bounded in time, so a broker that is down shows as a failing
part of the answer rather than as a hanging request.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from .models import Heartbeat


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str
    required: bool = True


def check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return Check(False, f"unreachable: {type(exc).__name__}")
    return Check(True, connection.vendor)


def check_cache() -> Check:
    key = f"healthz:{uuid.uuid4().hex}"
    try:
        cache.set(key, "1", timeout=10)
        value = cache.get(key)
        cache.delete(key)
    except Exception as exc:
        return Check(False, f"unreachable: {type(exc).__name__}")
    if value != "1":
        return Check(False, "a value written could not be read back")
    return Check(True, settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1])


def check_broker() -> Check:
    from outlet.celery import app

    try:
        with app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=3)
            transport = conn.transport_cls
    except Exception as exc:
        return Check(False, f"unreachable: {type(exc).__name__}")
    return Check(True, str(transport))


def _heartbeat_check(component: str, *, required: bool) -> Check:
    window = timedelta(seconds=3 * settings.OUTLET_WORKER_HEARTBEAT_SECONDS)
    if component == Heartbeat.Component.BEAT:
        window = timedelta(seconds=3 * 30)
    try:
        seen = list(
            Heartbeat.objects.filter(component=component, last_seen__gte=timezone.now() - window)
            .order_by("name")
            .values_list("name", flat=True)
        )
    except Exception as exc:
        return Check(False, f"unknown: {type(exc).__name__}", required=required)
    if not seen:
        return Check(False, f"no heartbeat in the last {int(window.total_seconds())}s", required)
    return Check(True, f"{len(seen)} alive: {', '.join(seen)}", required)


def health_report() -> tuple[bool, dict[str, dict[str, object]]]:
    """All checks, and whether every required one passed."""
    checks = {
        "database": check_database(),
        "cache": check_cache(),
        "broker": check_broker(),
        "worker": _heartbeat_check(Heartbeat.Component.WORKER, required=True),
        "beat": _heartbeat_check(Heartbeat.Component.BEAT, required=False),
    }
    healthy = all(c.ok for c in checks.values() if c.required)
    return healthy, {
        name: {"ok": c.ok, "detail": c.detail, "required": c.required} for name, c in checks.items()
    }
