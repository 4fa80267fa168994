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
from django.core.validators import URLValidator
from django.db.models import F, Q, Value
from django.db.models.functions import Concat
from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext_lazy as _


def site_url_absolute(path: str) -> str:
    """`path` on SITE_URL (an address that is already absolute stays as it is)."""
    return path if path.startswith(("http://", "https://")) else f"{settings.SITE_URL}{path}"


#: A canonical address names where a piece first appeared: a full web address, never a
#: path on this site nor an ftp: or javascript: one.
canonical_url_validator = URLValidator(
    schemes=["http", "https"],
    message=_("Enter a full web address starting with http:// or https://."),
)

CANONICAL_URL_HELP = _(
    "Only when this piece first appeared elsewhere: the full address of the original. "
    "Search engines then send readers there, and the sitemap leaves this one out. "
    "Empty means this site's own address."
)


def canonical_address(*, canonical_url: str, path: str) -> str:
    """What search engines should treat as the address of a piece at `path` here."""
    return canonical_url or site_url_absolute(path)


def canonical_here(*, url_name: str) -> Q:
    """Rows (with `slug` and `canonical_url`) whose canonical address is their own page
    here, `url_name` taking the slug: only those belong in a sitemap, as search engines
    ask that a sitemap list canonical addresses only."""
    own = site_url_absolute(reverse(url_name, kwargs={"slug": "-"}))
    before, _, after = own.rpartition("-")
    return Q(canonical_url="") | Q(canonical_url=Concat(Value(before), F("slug"), Value(after)))


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
