"""The click redirect and the opens pixel, answered in front of Django.

A click must redirect within a few milliseconds of server time whatever the load of
a send's first minutes, so production answers /n/c/ and /n/o/ here, before Django
builds a request or runs its middleware: the answer is the same (answers.py), the
work is a token check, a dictionary look-up and one append to this process's batch.
The Django views (views.py) give the same answers to the test client and `make run`.

Whatever goes wrong (a database error on a first look-up, a bug), a click answers a
302 home and the pixel its GIF: never a 500. A HEAD request is answered but not
counted (link checkers and previewers are not readers).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from django.core import signals

from outlet.core.ratelimits import environ_client_ip
from outlet.newsletters.measuring import answers

logger = logging.getLogger(__name__)

CLICK_PREFIX, OPEN_PREFIX = "/n/c/", "/n/o/"
_COMMON = [
    ("Cache-Control", "no-store, max-age=0"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
]


class TrackingWSGI:
    def __init__(self, application: Callable) -> None:
        self.application = application

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD")
        if path.startswith(CLICK_PREFIX) and method in ("GET", "HEAD"):
            token = path[len(CLICK_PREFIX) :].rstrip("/")
            location = self._guarded(
                answers.click_answer, token, record=method == "GET", fallback=answers.HOME
            )
            start_response(
                "302 Found",
                [("Location", answers.location_header(location)), ("Content-Length", "0"),
                 *_COMMON],
            )  # fmt: skip
            return [b""]
        if path.startswith(OPEN_PREFIX) and method in ("GET", "HEAD"):
            if method == "GET":
                self._guarded(
                    answers.open_answer,
                    path[len(OPEN_PREFIX) :].rstrip("/"),
                    user_agent=str(environ.get("HTTP_USER_AGENT", "")),
                    ip=environ_client_ip(environ),
                    fallback=None,
                )
            start_response(
                "200 OK",
                [
                    ("Content-Type", "image/gif"),
                    ("Content-Length", str(len(answers.PIXEL))),
                    *_COMMON,
                ],
            )
            return [answers.PIXEL]
        return self.application(environ, start_response)

    @staticmethod
    def _guarded(function: Callable, token: str, *, fallback, **kwargs):
        """Run an answer, giving `fallback` (and a log line) if it fails; when it needs
        the database (a link not yet remembered), inside Django's request signals, so
        its connections are looked after as a request's are."""
        try:
            if answers.needs_database(token):
                signals.request_started.send(sender=TrackingWSGI)
                try:
                    return function(token, **kwargs)
                finally:
                    signals.request_finished.send(sender=TrackingWSGI)
            return function(token, **kwargs)
        except Exception:  # noqa: BLE001 (a reader gets a redirect or a GIF, never a 500)
            logger.exception("newsletter tracking: answering %s failed", function.__name__)
            return fallback
