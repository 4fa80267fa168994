"""GET /metrics: the Prometheus exposition, to METRICS_ALLOW only, never cached."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from .access import metrics_allowed, metrics_host_allowed
from .gauges import BusinessCollector

#: Neither a browser nor a shared cache keeps it (Varnish's VCL refuses /metrics too).
CACHE_CONTROL = "private, no-store"
#: Django's answer to a Host outside ALLOWED_HOSTS is a 400 too.
HOST_REFUSED = "Bad Request: /metrics does not answer to this Host."


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    # Every process's counters (gunicorn workers, Celery's pool, beat), summed from
    # PROMETHEUS_MULTIPROC_DIR, then the business read now.
    MultiProcessCollector(registry, path=str(settings.METRICS_DIR))
    registry.register(BusinessCollector())
    return registry


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not metrics_host_allowed(request.META, settings.ALLOWED_HOSTS):
        response = HttpResponse(HOST_REFUSED, status=400, content_type="text/plain")
    elif not metrics_allowed(settings.METRICS_ALLOW, request.META):
        response = HttpResponse(
            "Not allowed: this address or token is not in METRICS_ALLOW.",
            status=403,
            content_type="text/plain",
        )
    else:
        response = HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = CACHE_CONTROL
    return response
