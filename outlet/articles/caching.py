"""Whole-page caching for readers, invalidated by a content version.

Views wrapped in `public_page` mark their response as a public page; the
`PageCacheMiddleware`, first in MIDDLEWARE, stores such responses (body and
headers, after every other middleware has run) and answers later requests for
the same address straight from the cache, without running the rest of the stack.

Each entry records the content version it was made under. Saving an article,
author, section, tag or appeal starts a new version (`content_version_bump`), so
no reader gets the old page after an editor saves. Scheduled articles need no
save: the version also remembers the next scheduled publish time and renews
itself once that passes, so a cached page never shows a scheduled article late
(nor early: it was in no page before its time).

Per-request values in a page, the CSP nonce and the CSRF token, are cut out
before storing and filled in fresh for every reader. Requests with a session
cookie (staff, readers with flash messages) always get a fresh page.

In production `PageCacheWSGI` answers stored pages before Django runs, from
process memory, and learns of new versions from Redis pub/sub (`VersionWatcher`)
instead of asking Redis on every request.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from functools import cache as cache_result
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseNotModified
from django.middleware.csrf import (
    CSRF_ALLOWED_CHARS,
    CSRF_SECRET_LENGTH,
    CsrfViewMiddleware,
    get_token,
)
from django.utils import timezone
from django.utils.http import parse_etags, quote_etag
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

VERSION_KEY = "articles:content-version"
NEXT_PUBLISH_KEY = "articles:next-publish-at"
VERSION_CHANNEL = "articles:content-version-changes"
PUBLIC_PAGE_ATTRIBUTE = "outlet_public_page"
NONCE_MARK = "\x00csp-nonce\x00"
CSRF_MARK = "\x00csrf-token\x00"
_CSRF_INPUT = re.compile(rb'(name="csrfmiddlewaretoken" value=")[^"]*(")')
_SKIPPED_PREFIXES = ("/static/", "/media/", "/admin/", "/_outbox/")
_STORED_HEADERS_SKIPPED = {"set-cookie", "content-length", "date"}
#: Browsers revalidate every time (cheap with the ETag), so a change reaches readers at once.
REVALIDATE = "public, max-age=0, must-revalidate"
#: How long content_cached keeps a value that no save has made stale.
CONTENT_CACHE_SECONDS = 3600
#: Pages each WSGI process keeps in memory (still checked against the shared version).
MEMORY_PAGES = 512


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
    next_timestamp = next_publish_at.timestamp() if next_publish_at else 0
    values = {VERSION_KEY: version, NEXT_PUBLISH_KEY: next_timestamp}
    if hasattr(cache, "set_many_and_publish"):
        # Redis: each process's VersionWatcher hears of the new version at once.
        cache.set_many_and_publish(
            values, channel=VERSION_CHANNEL, message=f"{version} {next_timestamp}", timeout=None
        )
    else:
        cache.set_many(values, timeout=None)
    cache.delete(NAVIGATION_CACHE_KEY)
    return version


def page_cache_enabled() -> bool:
    """On when CACHE_PAGE_SECONDS > 0 and the cache is shared by every process.

    A per-process memory cache (the default without CACHE_URL) cannot be
    invalidated across gunicorn workers, so it would serve old pages: no caching then.
    """
    return settings.CACHE_MIDDLEWARE_SECONDS > 0 and _cache_is_shared()


def _cache_is_shared() -> bool:
    from django.core.cache import caches
    from django.core.cache.backends.locmem import LocMemCache

    return settings.DEBUG or not isinstance(caches["default"], LocMemCache)


def _valid_version(values: dict) -> str | None:
    """The content version in `values`, or None if there is none or it has run out."""
    version = values.get(VERSION_KEY)
    next_publish_at = values.get(NEXT_PUBLISH_KEY) or 0
    if version is None or (next_publish_at and next_publish_at <= time.time()):
        return None
    return version


def content_version() -> str:
    values = cache.get_many([VERSION_KEY, NEXT_PUBLISH_KEY])
    return _valid_version(values) or content_version_bump()


def content_cached[T](key: str, compute: Callable[[], T]) -> T:
    """`compute()`, kept in the shared cache for as long as the content version lasts.

    For what a page is built from (an article with its related articles), so a page
    the page cache does not hold still costs no queries when its content has not
    changed. One cache round trip: the entry is stored beside the version it was made
    under, as pages are. Without a current version (the page cache is off and nothing
    was saved since the cache was emptied, or a scheduled time has passed) or a
    shared cache, the value is computed and not kept: starting a version would cost a
    query here, and a per-process cache could not be invalidated across workers.
    """
    if not _cache_is_shared():
        return compute()
    key = f"articles:data:{key}"
    values = cache.get_many([VERSION_KEY, NEXT_PUBLISH_KEY, key])
    version = _valid_version(values)
    entry = values.get(key)
    if entry is not None and version is not None and entry[0] == version:
        return entry[1]
    value = compute()
    if version is not None:
        cache.set(key, (version, value), CONTENT_CACHE_SECONDS)
    return value


def public_page(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Mark the view's pages as the same for every reader, so they may be cached."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponseBase:
        response = view(request, *args, **kwargs)
        setattr(response, PUBLIC_PAGE_ATTRIBUTE, True)
        return response

    return wrapped


def _page_key(environ: dict) -> str:
    """The cache key of a page, from the WSGI environ (Django's request.META is the same)."""
    address = f"{environ.get('PATH_INFO', '')}?{environ.get('QUERY_STRING', '')}"
    digest = hashlib.blake2b(address.encode("utf-8", "surrogateescape"), digest_size=16)
    return f"articles:page:{environ.get('REQUEST_METHOD') == 'HEAD'}:{digest.hexdigest()}"


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an If-None-Match header names this ETag (or any: "*")."""
    if not if_none_match:
        return False
    tags = parse_etags(if_none_match)
    return "*" in tags or etag in tags


class PageCacheMiddleware:
    """Serve and store public pages; see the module docstring."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.csrf = CsrfViewMiddleware(get_response)

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if not self._cacheable(request):
            return self.get_response(request)
        request.get_host()  # an unknown Host is refused here as everywhere else
        key = _page_key(request.META)
        values = cache.get_many([VERSION_KEY, NEXT_PUBLISH_KEY, key])
        version = _valid_version(values)
        entry = values.get(key)
        if entry is not None and version is not None and entry[0] == version:
            return self._from_cache(request, entry)
        response = self.get_response(request)
        if self._storable(response):
            # Only pages that will be stored start a version: others cost no query here.
            self._store(request, response, key, version or content_version_bump())
        return response

    def _cacheable(self, request: HttpRequest) -> bool:
        return (
            request.method in ("GET", "HEAD")
            and page_cache_enabled()
            and settings.SESSION_COOKIE_NAME not in request.COOKIES
            and not request.path.startswith(_SKIPPED_PREFIXES)
            and (not settings.SECURE_SSL_REDIRECT or request.is_secure())
        )

    @staticmethod
    def _storable(response: HttpResponseBase) -> bool:
        return (
            getattr(response, PUBLIC_PAGE_ATTRIBUTE, False)
            and response.status_code == 200
            and not response.streaming
            and all(name == settings.CSRF_COOKIE_NAME for name in response.cookies)
        )

    def _store(self, request: HttpRequest, response: HttpResponseBase, key: str, version: str):
        content: bytes = response.content  # type: ignore[attr-defined]
        content = _CSRF_INPUT.sub(rb"\g<1>" + CSRF_MARK.encode() + rb"\g<2>", content)
        headers = [
            (name, value)
            for name, value in response.items()
            if name.lower() not in _STORED_HEADERS_SKIPPED
        ]
        nonce = getattr(request, "_csp_nonce", None)
        if nonce:
            content = content.replace(str(nonce).encode(), NONCE_MARK.encode())
            headers = [(name, value.replace(str(nonce), NONCE_MARK)) for name, value in headers]
        etag = quote_etag(hashlib.blake2b(content, digest_size=16).hexdigest())
        headers = [h for h in headers if h[0].lower() not in ("etag", "cache-control")]
        headers += [("ETag", etag), ("Cache-Control", REVALIDATE)]
        cache.set(key, (version, content, headers, etag), settings.CACHE_MIDDLEWARE_SECONDS)
        response["ETag"] = etag
        response["Cache-Control"] = REVALIDATE

    def _from_cache(self, request: HttpRequest, entry: tuple) -> HttpResponseBase:
        _version, content, headers, etag = entry
        if _etag_matches(request.META.get("HTTP_IF_NONE_MATCH"), etag):
            # No CSP header: the browser keeps the one stored with its copy of the page,
            # whose nonce matches that copy.
            not_modified = HttpResponseNotModified()
            not_modified["ETag"] = etag
            not_modified["Cache-Control"] = REVALIDATE
            return not_modified
        nonce = secrets.token_urlsafe(16)
        nonce_mark, csrf_mark = NONCE_MARK.encode(), CSRF_MARK.encode()
        if nonce_mark in content:
            content = content.replace(nonce_mark, nonce.encode())
        uses_csrf = csrf_mark in content
        if uses_csrf:
            self.csrf.process_request(request)
            content = content.replace(csrf_mark, get_token(request).encode())
        response = HttpResponse(content)
        for name, value in headers:
            response[name] = value.replace(NONCE_MARK, nonce) if NONCE_MARK in value else value
        if uses_csrf:
            self.csrf.process_response(request, response)
        return response


class VersionWatcher:
    """This process's copy of the content version, kept current by Redis pub/sub.

    Reading the version from Redis on every cached page is a network round trip,
    as long as the rest of serving the page. With a Redis cache the version is
    instead kept in memory and `content_version_bump` announces each new one on
    a channel (in the same transaction that stores it). Before trusting its copy,
    each request reads whatever has arrived on the subscription without waiting
    (a poll of the socket, microseconds). Redis has written the announcement to
    that socket before the editor's save returns, so a request that starts after
    the save sees the new version, exactly as if it had asked Redis.

    The copy is trusted only while the subscription is known to be unbroken:
    after (re)connecting, announcements may have been missed, so the version is
    read afresh once Redis confirms the subscription. Any error drops the
    subscription; `current` then answers None and the caller asks the cache.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = 0
        self._pubsub: Any = None
        self._confirmed = False
        self._values: dict | None = None

    def current(self) -> tuple[bool, str | None]:
        """(known, version): known is False when the caller must ask the cache itself."""
        if not hasattr(cache, "subscribe"):
            return False, None
        with self._lock:
            try:
                if self._pubsub is None or self._pid != os.getpid():
                    self._start()
                while (message := self._pubsub.get_message(timeout=0.0)) is not None:
                    self._receive(message)
                if not self._confirmed:
                    return False, None
                if self._values is None:
                    self._values = cache.get_many([VERSION_KEY, NEXT_PUBLISH_KEY])
            except (RedisError, OSError, ValueError):
                logger.warning("content version subscription lost; asking Redis per request")
                self.close()
                return False, None
            return True, _valid_version(self._values)

    def _start(self) -> None:
        self.close()
        self._pid = os.getpid()
        self._pubsub = cache.subscribe(VERSION_CHANNEL)  # type: ignore[attr-defined]
        self._pubsub.connection.register_connect_callback(self._reconnected)

    def _reconnected(self, _connection) -> None:
        # Called by redis-py after it reconnects (and resubscribes) on its own.
        self._confirmed = False
        self._values = None

    def _receive(self, message: dict) -> None:
        if message["type"] == "subscribe":
            # Subscribed from here on: read the version once, then follow the channel.
            self._confirmed = True
            self._values = None
        elif message["type"] == "message":
            version, next_publish_at = message["data"].decode().split()
            self._values = {VERSION_KEY: version, NEXT_PUBLISH_KEY: float(next_publish_at)}

    def close(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        self._confirmed, self._values = False, None
        if pubsub is not None and self._pid == os.getpid():
            with contextlib.suppress(Exception):
                pubsub.close()


class PageCacheWSGI:
    """The same page cache in front of Django, for the production WSGI server.

    A stored page is answered here without building a Django request at all, which
    is what makes a cached page nearly as cheap as static bytes. Anything unusual
    (a session cookie, an unknown host, plain HTTP where HTTPS is required, a
    legacy CSRF cookie, a miss) goes to Django, whose PageCacheMiddleware applies
    the same rules and stores pages for next time.
    """

    def __init__(self, application: Callable) -> None:
        self.application = application
        self._memory: dict[str, tuple] = {}
        self.watcher = VersionWatcher()

    def __call__(self, environ: dict, start_response: Callable):
        served = self._serve(environ, start_response)
        if served is None:
            return self.application(environ, start_response)
        return served

    def _serve(self, environ: dict, start_response: Callable) -> list[bytes] | None:
        from django.http.cookie import parse_cookie
        from django.http.request import split_domain_port, validate_host

        path = environ.get("PATH_INFO", "")
        if (
            environ.get("REQUEST_METHOD") not in ("GET", "HEAD")
            or not page_cache_enabled()
            or path.startswith(_SKIPPED_PREFIXES)
            or (settings.SECURE_SSL_REDIRECT and not self._is_secure(environ))
        ):
            return None
        cookies = parse_cookie(environ.get("HTTP_COOKIE", ""))
        if settings.SESSION_COOKIE_NAME in cookies:
            return None
        # The host Django would check (HttpRequest._get_raw_host), proxy header included.
        if settings.USE_X_FORWARDED_HOST and "HTTP_X_FORWARDED_HOST" in environ:
            host = environ["HTTP_X_FORWARDED_HOST"]
        else:
            host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
        domain, _port = split_domain_port(host)
        if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
            return None
        key = _page_key(environ)
        # The page comes from this process's memory when it holds it for the current
        # version, which the watcher knows without a round trip (see VersionWatcher).
        remembered = self._memory.get(key)
        known, version = self.watcher.current()
        if known and version is None:
            return None  # a scheduled time has passed: Django starts a new version
        entry: tuple | None
        if known and remembered:
            entry = remembered
        else:
            keys = [key] if known else [VERSION_KEY, NEXT_PUBLISH_KEY, key]
            values = cache.get_many(keys)
            if not known:
                version = _valid_version(values)
            fresh = remembered is not None and remembered[0] == version
            entry = remembered if fresh else values.get(key)
        if entry is None or version is None or entry[0] != version:
            if remembered:
                self._memory.pop(key, None)
            return None
        if entry is not remembered:
            if key not in self._memory and len(self._memory) >= MEMORY_PAGES:
                self._memory.pop(next(iter(self._memory)))
            self._memory[key] = entry
        _version, content, headers, etag = entry
        revalidate = [("ETag", etag), ("Cache-Control", REVALIDATE)]
        if _etag_matches(environ.get("HTTP_IF_NONE_MATCH"), etag):
            start_response("304 Not Modified", revalidate)
            return []
        extra: list[tuple[str, str]] = []
        nonce = secrets.token_urlsafe(16)
        if NONCE_MARK.encode() in content:
            content = content.replace(NONCE_MARK.encode(), nonce.encode())
        if CSRF_MARK.encode() in content:
            secret = cookies.get(settings.CSRF_COOKIE_NAME, "")
            if len(secret) != CSRF_SECRET_LENGTH or set(secret) - set(CSRF_ALLOWED_CHARS):
                if secret:
                    return None  # a legacy or odd cookie: let Django sort it out
                secret = _random_csrf_string()
                extra.append(("Set-Cookie", _csrf_cookie_header(secret)))
            content = content.replace(CSRF_MARK.encode(), _masked_csrf_token(secret).encode())
        response_headers = [
            (name, value.replace(NONCE_MARK, nonce) if NONCE_MARK in value else value)
            for name, value in headers
        ]
        response_headers += [("Content-Length", str(len(content))), *extra]
        start_response("200 OK", response_headers)
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [content]

    @staticmethod
    def _is_secure(environ: dict) -> bool:
        proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
        if proxy:
            header, secure_value = proxy
            forwarded = environ.get(header)
            if forwarded is not None:
                return forwarded.split(",")[0].strip() == secure_value
        return environ.get("wsgi.url_scheme") == "https"


def _csrf_cookie_header(secret: str) -> str:
    """The Set-Cookie value Django's CSRF middleware would send for this secret."""
    return _csrf_cookie_template().replace(_COOKIE_PLACEHOLDER, secret)


_COOKIE_PLACEHOLDER = "csrf-secret-placeholder"


@cache_result
def _csrf_cookie_template() -> str:
    response = HttpResponse()
    response.set_cookie(
        settings.CSRF_COOKIE_NAME,
        _COOKIE_PLACEHOLDER,
        max_age=settings.CSRF_COOKIE_AGE,
        domain=settings.CSRF_COOKIE_DOMAIN,
        path=settings.CSRF_COOKIE_PATH,
        secure=settings.CSRF_COOKIE_SECURE,
        httponly=settings.CSRF_COOKIE_HTTPONLY,
        samesite=settings.CSRF_COOKIE_SAMESITE,
    )
    return response.cookies[settings.CSRF_COOKIE_NAME].output(header="").strip()


# Random bytes become CSRF characters through one table; the top 8 byte values
# (256 is not a multiple of 62) are dropped, so every character is equally likely.
_CSRF_USABLE_BYTES = len(CSRF_ALLOWED_CHARS) * (256 // len(CSRF_ALLOWED_CHARS))
_CSRF_BYTE_TABLE = bytes(
    ord(CSRF_ALLOWED_CHARS[byte % len(CSRF_ALLOWED_CHARS)]) for byte in range(256)
)
_CSRF_DROPPED_BYTES = bytes(range(_CSRF_USABLE_BYTES, 256))
_CSRF_INDEX = {char: index for index, char in enumerate(CSRF_ALLOWED_CHARS)}


def _random_csrf_string() -> str:
    """A CSRF secret like Django's: 32 letters and digits, uniform, from the OS's CSPRNG."""
    chars = b""
    while len(chars) < CSRF_SECRET_LENGTH:
        chars += os.urandom(CSRF_SECRET_LENGTH + 8).translate(_CSRF_BYTE_TABLE, _CSRF_DROPPED_BYTES)
    return chars[:CSRF_SECRET_LENGTH].decode()


def _masked_csrf_token(secret: str) -> str:
    """The form token for a secret, masked exactly as django.middleware.csrf does."""
    chars, index = CSRF_ALLOWED_CHARS, _CSRF_INDEX
    mask = _random_csrf_string()
    cipher = "".join(
        chars[(index[x] + index[y]) % len(chars)] for x, y in zip(secret, mask, strict=True)
    )
    return mask + cipher
