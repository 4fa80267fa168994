"""Who may read /metrics: METRICS_ALLOW, parsed once at startup.

Entries are IP addresses or networks (`10.0.0.0/8`, `::1`; no host bits set) and
bearer tokens (`bearer:<token>`, at least 32 characters; never shown in the repr or
an error). An address is trusted only when it is the scraper's own, the connection's
REMOTE_ADDR. Scrapes never come through a proxy,
so a request carrying X-Forwarded-For or Forwarded is judged by its token alone,
whatever OUTLET_BEHIND_PROXY says: the header may be forged straight to gunicorn,
and a loopback TLS terminator or Varnish (which lets `/%6detrics` through) would
otherwise make every reader look like 127.0.0.1.

/metrics is answered before ALLOWED_HOSTS is checked (Prometheus asks by the machine's
address), so the Host is checked here: an IP literal, `localhost` or an ALLOWED_HOSTS
name, never another name, which a browser inside METRICS_ALLOW could be led to
by DNS rebinding.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.http.request import split_domain_port, validate_host

BEARER_PREFIX = "bearer:"
TOKEN_MIN_LENGTH = 32
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: An entry made only of these may be echoed in an error; anything else may be a token.
_ADDRESS_LIKE = re.compile(r"(?=.*[.:])[0-9A-Fa-f.:/]+")


@dataclass(frozen=True)
class MetricsAllow:
    networks: tuple[IPNetwork, ...]
    # Never in the repr: Django's debug page and error reports show settings by it.
    tokens: tuple[str, ...] = field(repr=False)


def _network_parse(entry: str, position: int) -> IPNetwork:
    try:
        return ipaddress.ip_network(entry, strict=True)
    except ValueError:
        pass
    try:
        # Host bits set: strict=False would quietly widen 10.0.0.9/0 to everyone.
        widened = ipaddress.ip_network(entry, strict=False)
    except ValueError:
        # The entry is not echoed unless it looks like an address: it may be a token
        # whose prefix was mistyped (Bearer:, baerer:).
        named = repr(entry) if _ADDRESS_LIKE.fullmatch(entry) else f"entry {position}"
        raise ImproperlyConfigured(
            f"METRICS_ALLOW: {named} is neither an IP address or network "
            "(10.0.0.0/8, ::1) nor a token written as bearer:<token>."
        ) from None
    address = entry.partition("/")[0]
    raise ImproperlyConfigured(
        f"METRICS_ALLOW: {entry!r} has host bits set; write the network ({widened}) "
        f"or the single address ({address})."
    )


def metrics_allow_parse(entries: list[str]) -> MetricsAllow:
    """The allow list from METRICS_ALLOW's entries; a malformed entry stops startup."""
    networks: list[IPNetwork] = []
    tokens: list[str] = []
    for position, raw in enumerate(entries, start=1):
        entry = raw.strip()
        if not entry:
            continue
        if entry.startswith(BEARER_PREFIX):
            token = entry.removeprefix(BEARER_PREFIX).strip()
            if len(token) < TOKEN_MIN_LENGTH:
                raise ImproperlyConfigured(
                    f"METRICS_ALLOW: a bearer token must be at least {TOKEN_MIN_LENGTH} "
                    "characters (python -c 'import secrets; print(secrets.token_urlsafe(32))')."
                )
            tokens.append(token)
            continue
        networks.append(_network_parse(entry, position))
    return MetricsAllow(networks=tuple(networks), tokens=tuple(tokens))


#: Headers a proxy adds (or a reader forges); their presence leaves no trusted address.
FORWARDED_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED")


def _scraper_address(meta: Mapping[str, Any]) -> str | None:
    if any(key in meta for key in FORWARDED_HEADERS):
        return None  # relayed or forged: the token alone decides
    return meta.get("REMOTE_ADDR") or None


def metrics_host_allowed(meta: Mapping[str, Any], allowed_hosts: list[str]) -> bool:
    """Whether the request's Host is one /metrics answers to (no Host: no browser)."""
    host = meta.get("HTTP_HOST")
    if host is None:
        return True
    domain, _port = split_domain_port(str(host))
    if not domain:
        return False
    if domain == "localhost":
        return True
    literal = domain[1:-1] if domain.startswith("[") and domain.endswith("]") else domain
    try:
        ipaddress.ip_address(literal)
    except ValueError:
        return validate_host(domain, allowed_hosts)
    return True


def metrics_allowed(allow: MetricsAllow, meta: Mapping[str, Any]) -> bool:
    """Whether a request (its WSGI environ) may read the metrics."""
    header = str(meta.get("HTTP_AUTHORIZATION", ""))
    scheme, _, presented = header.partition(" ")
    if scheme.lower() == "bearer" and presented:
        given = presented.strip().encode()
        # Every token compared, in constant time: the answer's timing names none.
        matches = [hmac.compare_digest(given, token.encode()) for token in allow.tokens]
        if any(matches):
            return True
    address = _scraper_address(meta)
    if address is None:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in allow.networks)
