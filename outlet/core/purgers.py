"""The one door to the shared HTTP cache in front of the site: purge pages by key.

A purger takes surrogate keys (articles/edge.py names them) and makes the shared
cache drop every page carrying any of them, or raises `PurgeError` so the task
retries. Built in:

- `VarnishPurger`: an HTTP `PURGE` to each Varnish in EDGE_PURGE_URLS with the keys
  in an `xkey-purge` header, which deploy/varnish/outlet.vcl hands to the xkey vmod
  (Debian's varnish-modules). 200 is success, anything else an error.
- `HttpPurger`: a plain-HTTP interface a CDN adapter can implement: a POST of
  `{"keys": [...]}` as JSON to each EDGE_PURGE_URLS address, with
  `Authorization: Bearer EDGE_PURGE_TOKEN` when set; any 2xx is success.

EDGE_PURGER picks one ("varnish", "http"), or names a class by its dotted path
(a CDN's own API: subclass `Purger`, read your settings, implement `purge`).
Empty: no purger, and nothing is queued.
"""

from __future__ import annotations

from functools import cache

import requests
from django.conf import settings
from django.utils.module_loading import import_string

TIMEOUT_SECONDS = 5
#: Keys per request: headers and bodies stay far below any server's limits.
KEYS_PER_REQUEST = 100


class PurgeError(Exception):
    """The shared cache did not confirm the purge; the task tries again later."""


class Purger:
    """Make the shared cache drop every page carrying any of `keys`."""

    def purge(self, keys: list[str]) -> None:
        raise NotImplementedError


def _chunks(keys: list[str]) -> list[list[str]]:
    return [keys[i : i + KEYS_PER_REQUEST] for i in range(0, len(keys), KEYS_PER_REQUEST)]


class VarnishPurger(Purger):
    def __init__(self, urls: list[str] | None = None) -> None:
        self.urls = urls if urls is not None else settings.EDGE_PURGE_URLS

    def purge(self, keys: list[str]) -> None:
        for url in self.urls:
            for chunk in _chunks(keys):
                try:
                    response = requests.request(
                        "PURGE",
                        url,
                        headers={"xkey-purge": " ".join(chunk)},
                        timeout=TIMEOUT_SECONDS,
                    )
                except requests.RequestException as exc:
                    raise PurgeError(f"{url}: {exc}") from exc
                if response.status_code != 200:
                    raise PurgeError(f"{url} answered {response.status_code} to PURGE")


class HttpPurger(Purger):
    def __init__(self, urls: list[str] | None = None, token: str | None = None) -> None:
        self.urls = urls if urls is not None else settings.EDGE_PURGE_URLS
        self.token = token if token is not None else settings.EDGE_PURGE_TOKEN

    def purge(self, keys: list[str]) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        for url in self.urls:
            for chunk in _chunks(keys):
                try:
                    response = requests.post(
                        url, json={"keys": chunk}, headers=headers, timeout=TIMEOUT_SECONDS
                    )
                except requests.RequestException as exc:
                    raise PurgeError(f"{url}: {exc}") from exc
                if not 200 <= response.status_code < 300:
                    raise PurgeError(f"{url} answered {response.status_code} to the purge")


BUILT_IN = {"varnish": VarnishPurger, "http": HttpPurger}


@cache
def _purger_class(name: str) -> type[Purger]:
    return BUILT_IN.get(name) or import_string(name)


def purger() -> Purger | None:
    """The configured purger, or None when EDGE_PURGER is empty."""
    name = settings.EDGE_PURGER
    return _purger_class(name)() if name else None
