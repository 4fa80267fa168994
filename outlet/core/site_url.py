"""Absolute addresses come from SITE_URL, never from the request's Host.

A Host (or X-Forwarded-Host) that ALLOWED_HOSTS lets through may still name another
port or scheme: a feed or page built from it and then cached (by the origin's page cache
or by Varnish) would send every reader after it there. So nothing that is shown or
stored builds an address from the request.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.syndication.views import Feed
from django.http import HttpRequest


def site_url_absolute(path: str) -> str:
    """`path` on SITE_URL (an address that is already absolute stays as it is)."""
    return path if path.startswith(("http://", "https://")) else f"{settings.SITE_URL}{path}"


class _OnSiteUrl:
    """The request as Django's syndication framework sees it: its host and scheme are
    SITE_URL's (the framework builds every link from `get_host()` and `is_secure()`)."""

    def __init__(self, request: HttpRequest) -> None:
        self._request = request

    def get_host(self) -> str:
        return urlsplit(settings.SITE_URL).netloc

    def is_secure(self) -> bool:
        return urlsplit(settings.SITE_URL).scheme == "https"

    def __getattr__(self, name: str) -> Any:
        return getattr(self._request, name)


class SiteUrlFeed(Feed):
    """A feed whose channel, item and self links are all on SITE_URL."""

    def get_feed(self, obj: Any, request: HttpRequest):
        return super().get_feed(obj, _OnSiteUrl(request))  # type: ignore[arg-type]
