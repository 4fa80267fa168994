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

A stored page is the same bytes for every reader: public pages carry no CSRF
token (forms fetch one when a reader starts using them, see core.views.csrf_token)
and no CSP nonce (scripts and styles come from 'self'), so the same page can be
held by a shared cache in front (edge.py sets its Cache-Control and surrogate keys).
Requests with a session cookie (staff, preview links) always get a fresh, private
page; a page that sets a cookie is never stored.

In production `PageCacheWSGI` answers stored pages before Django runs, from
process memory, and learns of new versions from Redis pub/sub (`VersionWatcher`)
instead of asking Redis on every request.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseNotModified
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import parse_etags, quote_etag
from redis.exceptions import RedisError

from outlet.core.language import path_without_language

from .edge import page_keys_add, public_headers_set, query_normalise

logger = logging.getLogger(__name__)

VERSION_KEY = "articles:content-version"
NEXT_PUBLISH_KEY = "articles:next-publish-at"
VERSION_CHANNEL = "articles:content-version-changes"
PUBLIC_PAGE_ATTRIBUTE = "outlet_public_page"
_SKIPPED_PREFIXES = ("/static/", "/media/", "/admin/", "/_outbox/", "/n/")
_STORED_HEADERS_SKIPPED = {"set-cookie", "content-length", "date"}
#: How long content_cached keeps a value that no save has made stale.
CONTENT_CACHE_SECONDS = 3600
#: Pages each WSGI process keeps in memory (still checked against the shared version).
MEMORY_PAGES = 512


def content_version_bump() -> str:
    """Start a new content version: every cached page is stale from now on."""
    from outlet.core.language import site_languages

    from .models import Article
    from .selectors import navigation_cache_key

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
    cache.delete_many([navigation_cache_key(language) for language in site_languages()])
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


def public_page(
    view: Callable[..., HttpResponseBase], *keys: str
) -> Callable[..., HttpResponseBase]:
    """Mark the view's pages as the same for every reader, so they may be cached.

    `keys` are the surrogate keys every page of this view carries (edge.py); the view
    adds what else it shows with edge.page_keys_add.
    """

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponseBase:
        page_keys_add(request, *keys)
        response = view(request, *args, **kwargs)
        setattr(response, PUBLIC_PAGE_ATTRIBUTE, True)
        return response

    return wrapped


def _page_key(environ: dict) -> str:
    """The cache key of a page, from the WSGI environ (Django's request.META is the same).

    The site's languages are part of it: a restart with another SITE_LANGUAGE(S) never
    serves the pages a shared cache (Redis) kept under the old ones (a dropped language's
    /en/ pages, pages without the new switcher). One language keeps the key it had."""
    address = f"{environ.get('PATH_INFO', '')}?{environ.get('QUERY_STRING', '')}"
    digest = hashlib.blake2b(address.encode("utf-8", "surrogateescape"), digest_size=16)
    head = environ.get("REQUEST_METHOD") == "HEAD"
    languages = "+".join(code for code, _name in settings.LANGUAGES)
    return f"articles:page:{languages}:{head}:{digest.hexdigest()}"


#: Pages that read tracking parameters (the donation form credits a gift to its
#: utm_* campaign) keep them; the VCL passes these paths before it drops them.
_TRACKING_READ_PREFIXES = ("/donate/", "/newsletter/")


def _query_normalise(request: HttpRequest) -> None:
    """Drop tracking parameters and sort the query (edge.query_normalise) for the key and
    for the view alike, so a stored page never depends on what the key leaves out."""
    query = request.META.get("QUERY_STRING", "")
    if not query or path_without_language(request.path).startswith(_TRACKING_READ_PREFIXES):
        return
    normalised = query_normalise(query)
    if normalised != query:
        request.META["QUERY_STRING"] = normalised
        request.__dict__.pop("GET", None)  # WSGIRequest.GET is cached from QUERY_STRING


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an If-None-Match header names this ETag (or any: "*")."""
    if not if_none_match:
        return False
    tags = parse_etags(if_none_match)
    return "*" in tags or etag in tags


class PageCacheMiddleware:
    """Serve and store public pages, and give them their shared-cache headers.

    See the module docstring; edge.public_headers_set decides public or private.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if not self._cacheable(request):
            return self._finish(request, self.get_response(request))
        request.get_host()  # an unknown Host is refused here as everywhere else
        _query_normalise(request)
        key = _page_key(request.META)
        values = cache.get_many([VERSION_KEY, NEXT_PUBLISH_KEY, key])
        version = _valid_version(values)
        entry = values.get(key)
        if entry is not None and version is not None and entry[0] == version:
            return self._from_cache(request, entry)
        response = self._finish(request, self.get_response(request))
        if self._storable(response):
            # Only pages that will be stored start a version: others cost no query here.
            self._store(response, key, version or content_version_bump())
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
    def _finish(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        """A public page stays public only if it is the same for every anonymous reader."""
        if getattr(response, PUBLIC_PAGE_ATTRIBUTE, False):
            if public_headers_set(request, response):
                _vary_without_cookie(response)
            else:
                setattr(response, PUBLIC_PAGE_ATTRIBUTE, False)
        return response

    @staticmethod
    def _storable(response: HttpResponseBase) -> bool:
        return (
            getattr(response, PUBLIC_PAGE_ATTRIBUTE, False)
            and response.status_code == 200
            and not response.streaming
            and not response.cookies
        )

    def _store(self, response: HttpResponseBase, key: str, version: str):
        content: bytes = response.content  # type: ignore[attr-defined]
        etag = quote_etag(hashlib.blake2b(content, digest_size=16).hexdigest())
        response["ETag"] = etag
        headers = [
            (name, value)
            for name, value in response.items()
            if name.lower() not in _STORED_HEADERS_SKIPPED
        ]
        cache.set(key, (version, content, headers, etag), settings.CACHE_MIDDLEWARE_SECONDS)

    def _from_cache(self, request: HttpRequest, entry: tuple) -> HttpResponseBase:
        _version, content, headers, etag = entry
        if _etag_matches(request.META.get("HTTP_IF_NONE_MATCH"), etag):
            return _not_modified(HttpResponseNotModified(), headers)
        response = HttpResponse(content)
        for name, value in headers:
            response[name] = value
        return response


def _vary_without_cookie(response: HttpResponseBase) -> None:
    """Drop `Vary: Cookie` (added when the session or CSRF machinery was consulted): a
    public page is the same whatever the reader's cookies, and a shared cache keyed on
    them would keep one copy per reader."""
    if not response.has_header("Vary"):
        return
    kept = [v.strip() for v in response["Vary"].split(",") if v.strip().lower() != "cookie"]
    del response["Vary"]
    if kept:
        patch_vary_headers(response, kept)


#: Headers a 304 repeats from the stored page (RFC 9110 15.4.5), so caches update them.
_NOT_MODIFIED_HEADERS = {"etag", "cache-control", "vary", "content-location", "expires"}


def _not_modified(response: HttpResponseBase, headers: list[tuple[str, str]]) -> HttpResponseBase:
    for name, value in headers:
        if name.lower() in _NOT_MODIFIED_HEADERS:
            response[name] = value
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
    miss) goes to Django, whose PageCacheMiddleware applies
    the same rules and stores pages for next time.
    """

    def __init__(self, application: Callable) -> None:
        self.application = application
        self._memory: dict[str, tuple] = {}
        self.watcher = VersionWatcher()

    def __call__(self, environ: dict, start_response: Callable):
        from outlet.core.metrics.instruments import http_request_record

        started, status = time.perf_counter(), []

        def noted(line: str, headers: list, *rest):
            status.append(line)
            return start_response(line, headers, *rest)

        served = self._serve(environ, noted)
        if served is None:
            return self.application(environ, start_response)
        http_request_record(
            view="page_cache",
            method=environ.get("REQUEST_METHOD", ""),
            status=int(status[0][:3]) if status else 200,
            seconds=time.perf_counter() - started,
        )
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
        if _etag_matches(environ.get("HTTP_IF_NONE_MATCH"), etag):
            start_response(
                "304 Not Modified",
                [(n, v) for n, v in headers if n.lower() in _NOT_MODIFIED_HEADERS],
            )
            return []
        start_response("200 OK", [*headers, ("Content-Length", str(len(content)))])
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
