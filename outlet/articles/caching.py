"""Whole-page caching for readers, invalidated by a content version.

Every public page is cached under a key that includes the current content
version. Saving an article, author, section, tag or appeal bumps the version
(`content_version_bump`), so the next reader gets a fresh page; old entries
simply expire. Scheduled articles need no save to appear: the version also
remembers the next scheduled publish time and renews itself once it passes,
so a cached page never shows a scheduled article late (or early: it was never
in any page before its time).

Per-request values in a page (the CSP nonce, a CSRF token) are cut out before
storing and filled in for each reader. Requests with a session cookie (staff,
readers with flash messages) always get a fresh page.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseNotModified
from django.middleware.csrf import get_token
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.utils.http import parse_etags, quote_etag

VERSION_KEY = "articles:content-version"
NEXT_PUBLISH_KEY = "articles:next-publish-at"
NONCE_MARK = b"\x00csp-nonce\x00"
CSRF_MARK = b"\x00csrf-token\x00"
KEPT_HEADERS = ("X-Robots-Tag", "Content-Language", "Last-Modified")
_CSRF_INPUT = re.compile(rb'(name="csrfmiddlewaretoken" value=")[^"]*(")')


def content_version_bump() -> str:
    """Start a new content version: every cached page is stale from now on."""
    from .models import Article
    from .selectors import NAVIGATION_CACHE_KEY

    version = uuid.uuid4().hex[:12]
    next_publish_at = (
        Article.objects.filter(
            status__in=[Article.Status.SCHEDULED, Article.Status.PUBLISHED],
            publish_at__gt=timezone.now(),
        )
        .order_by("publish_at")
        .values_list("publish_at", flat=True)
        .first()
    )
    cache.set_many(
        {
            VERSION_KEY: version,
            NEXT_PUBLISH_KEY: next_publish_at.timestamp() if next_publish_at else 0,
        },
        timeout=None,
    )
    cache.delete(NAVIGATION_CACHE_KEY)
    return version


def content_version() -> str:
    values = cache.get_many([VERSION_KEY, NEXT_PUBLISH_KEY])
    version = values.get(VERSION_KEY)
    next_publish_at = values.get(NEXT_PUBLISH_KEY) or 0
    if version is None or (next_publish_at and next_publish_at <= time.time()):
        version = content_version_bump()
    return version


def _etag(content: bytes) -> str:
    return quote_etag(hashlib.blake2b(content, digest_size=16).hexdigest())


def _not_modified(request: HttpRequest, etag: str) -> bool:
    header = request.META.get("HTTP_IF_NONE_MATCH")
    if not header:
        return False
    tags = parse_etags(header)
    return "*" in tags or etag in tags or etag.removeprefix("W/") in tags


def _cut_per_request_values(request: HttpRequest, content: bytes) -> bytes:
    nonce = getattr(request, "_csp_nonce", None)
    if nonce is not None and bool(nonce):
        content = content.replace(str(nonce).encode(), NONCE_MARK)
    return _CSRF_INPUT.sub(rb"\g<1>" + CSRF_MARK + rb"\g<2>", content)


def _fill_per_request_values(request: HttpRequest, content: bytes) -> bytes:
    if NONCE_MARK in content:
        content = content.replace(NONCE_MARK, str(request.csp_nonce).encode())  # type: ignore[attr-defined]
    if CSRF_MARK in content:
        content = content.replace(CSRF_MARK, get_token(request).encode())
    return content


def _respond(
    request: HttpRequest, content: bytes, content_type: str, headers: dict[str, str]
) -> HttpResponseBase:
    """A page with an ETag (when it has no per-request values) answering If-None-Match."""
    per_request = NONCE_MARK in content or CSRF_MARK in content
    etag = None if per_request else _etag(content)
    if etag and _not_modified(request, etag):
        response: HttpResponseBase = HttpResponseNotModified()
    else:
        response = HttpResponse(
            _fill_per_request_values(request, content), content_type=content_type
        )
    for name, value in headers.items():
        response[name] = value
    if etag:
        response["ETag"] = etag
    # Browsers revalidate every time (cheap, thanks to the ETag), so an editor's
    # change reaches readers at once.
    patch_cache_control(response, public=True, max_age=0, must_revalidate=True)
    return response


def _cacheable(request: HttpRequest) -> bool:
    return (
        request.method in ("GET", "HEAD")
        and settings.CACHE_MIDDLEWARE_SECONDS > 0
        and settings.SESSION_COOKIE_NAME not in request.COOKIES
    )


def public_page(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Cache a public page under the content version and answer conditional GETs."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponseBase:
        if not _cacheable(request):
            return view(request, *args, **kwargs)
        path_hash = hashlib.blake2b(request.get_full_path().encode(), digest_size=16).hexdigest()
        key = f"articles:page:{content_version()}:{path_hash}"
        entry = cache.get(key)
        if entry is None:
            response = view(request, *args, **kwargs)
            if hasattr(response, "render") and callable(response.render):
                response.render()
            if (
                response.status_code != 200
                or response.streaming
                or response.cookies
                or response.has_header("Vary")
            ):
                return response
            content = _cut_per_request_values(request, response.content)  # type: ignore[attr-defined]
            headers = {h: response[h] for h in KEPT_HEADERS if response.has_header(h)}
            entry = (content, response["Content-Type"], headers)
            cache.set(key, entry, settings.CACHE_MIDDLEWARE_SECONDS)
        return _respond(request, *entry)

    return wrapped
