"""X-Request-ID: every request's lines carry one id, and the response says it.

An id from the client or the proxy in front is kept when it is sane (letters, digits
and `._:=+-`, at most 128 characters: what load balancers and tracing headers use), so
one id follows a request through the TLS terminator, Varnish and here; anything else
is replaced by a fresh one. The id is for correlation only and is never trusted.

`RequestIdWSGI` wraps the whole production front (wsgi.py), so the tracked links and
cached pages answered before Django carry an id too; `RequestIdMiddleware` does the same
for requests that reach Django another way (the test client), keeping an id the front
already bound.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from django.http import HttpRequest
from django.http.response import HttpResponseBase

from .context import log_context_bind, log_context_current, log_context_reset

HEADER = "X-Request-ID"
_SANE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:=+-]{0,127}", re.ASCII)


def request_id_from(incoming: str | None) -> str:
    """The incoming id if sane, else a new one."""
    if incoming and _SANE.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        bound = log_context_current().get("request_id")
        tokens = {}
        if bound is None:
            bound = request_id_from(request.headers.get(HEADER))
            tokens = log_context_bind(request_id=bound)
        try:
            response = self.get_response(request)
        finally:
            log_context_reset(tokens)
        response[HEADER] = bound
        return response


class RequestIdWSGI:
    """Binds the id for the whole WSGI call and adds the response header."""

    def __init__(self, application: Callable[..., Iterable[bytes]]) -> None:
        self.application = application

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        request_id = request_id_from(environ.get("HTTP_X_REQUEST_ID"))
        tokens = log_context_bind(request_id=request_id)

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            headers = [(k, v) for k, v in headers if k.lower() != HEADER.lower()]
            headers.append((HEADER, request_id))
            if exc_info is None:  # as the server called it: some callers take two arguments
                return start_response(status, headers)
            return start_response(status, headers, exc_info)

        try:
            return self.application(environ, start)
        finally:
            log_context_reset(tokens)
