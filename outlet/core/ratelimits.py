"""
Rate limits shared by every form that strangers can submit (sign-ups, payments).

Fixed windows counted in Django's cache: cheap, and shared by every web process
when the cache is Redis.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """The reader's address, for rate limits and consent records.

    Behind the TLS proxy (OUTLET_BEHIND_PROXY) REMOTE_ADDR is the proxy for
    everyone, so the address the proxy appended last to X-Forwarded-For is used
    instead (earlier entries come from the client and can be forged).
    """
    return environ_client_ip(request.META)


def environ_client_ip(environ: Mapping[str, Any]) -> str | None:
    """`client_ip` from a WSGI environ (or request.META): for code in front of Django."""
    if getattr(settings, "SECURE_PROXY_SSL_HEADER", None):
        last = str(environ.get("HTTP_X_FORWARDED_FOR", "")).rsplit(",", 1)[-1].strip()
        if last:
            return last
    return environ.get("REMOTE_ADDR") or None


def rate_limit_client(ip: str | None) -> str:
    """The client a rate limit counts an IP as: an IPv4 address itself, an IPv6 address's
    /64 (one host or one home holds a whole /64, so each of its addresses is not a new
    client), an IPv4-mapped IPv6 address as its IPv4 address. Every limit keyed by IP
    goes through here."""
    try:
        address = ipaddress.ip_address((ip or "").strip())
    except ValueError:
        return ip or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def rate_limit_count(key: str, *, window: int) -> int:
    """Count one attempt under `key`; how many there have been in this window, this one
    included."""
    if cache.add(key, 1, timeout=window):
        return 1
    try:
        return int(cache.incr(key))
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=window)
        return 1


def rate_limit_hit(key: str, *, limit: int, window: int) -> bool:
    """Count one attempt under `key`; True while the count in this window is within `limit`."""
    return rate_limit_count(key, window=window) <= limit
