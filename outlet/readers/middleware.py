"""Every response under /account/ is private and never stored: the views' never_cache
covers what they return, but not a 404 they raise, a 405 from require_POST or a 404 for an
address no view matches. They say little, but a shared cache must keep nothing of a path
where a reader's pages live (docs/readers.md)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase
from django.utils.cache import add_never_cache_headers

from .session import COOKIE_PATH


class AccountNeverCacheMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if request.path.startswith(COOKIE_PATH):
            add_never_cache_headers(response)  # private, no-store
        return response
