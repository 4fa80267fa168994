"""Requests by view, method and status, and their latency; and /metrics itself.

Our own few lines rather than django-prometheus, whose releases stop short of the
Django we run. Labels are the URL pattern's name (never the path, which holds slugs
and tokens), the method folded to a known few, and the status code.

/metrics is answered here, first of all middleware, rather than through the URLconf:
Prometheus asks each web process by its address (Host: 10.0.0.5:8000), which
ALLOWED_HOSTS rightly refuses everywhere else; the view accepts that, `localhost` or
an ALLOWED_HOSTS name (never another name: DNS rebinding), and who asks
(METRICS_ALLOW) decides the rest, so nothing after this needs to see it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.http import HttpRequest
from django.http.response import HttpResponseBase

from .instruments import db_timings_flush, http_request_record
from .views import metrics

UNRESOLVED = "<unresolved>"
METRICS_PATH = "/metrics"


class RequestMetricsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        response: HttpResponseBase
        if request.path_info == METRICS_PATH:
            response = metrics(request)
            view = "metrics"
        else:
            response = self.get_response(request)
            match = getattr(request, "resolver_match", None)
            view = (match.view_name if match is not None else "") or UNRESOLVED
        http_request_record(
            view=view,
            method=request.method or "",
            status=response.status_code,
            seconds=time.perf_counter() - started,
        )
        db_timings_flush()
        return response
