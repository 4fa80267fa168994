"""The click redirect and the opens pixel, answered in front of Django.

A click must redirect within a few milliseconds of server time whatever the load of
a send's first minutes, so production answers /n/c/ and /n/o/ here, before Django
builds a request or runs its middleware: the answer is the same (answers.py), the
work is a token check, a dictionary look-up and one Redis RPUSH. The Django views
(views.py) give the same answers to the test client and `make run`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.core import signals

from outlet.newsletters.measuring import answers

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
        if path.startswith(CLICK_PREFIX) and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            location = self._guarded(answers.click_answer, path[len(CLICK_PREFIX) :].rstrip("/"))
            start_response("302 Found", [("Location", location), ("Content-Length", "0"), *_COMMON])
            return [b""]
        if path.startswith(OPEN_PREFIX) and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            token = path[len(OPEN_PREFIX) :].rstrip("/")
            self._guarded(
                answers.open_answer,
                token,
                user_agent=environ.get("HTTP_USER_AGENT", ""),
                ip=environ.get("REMOTE_ADDR"),
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
    def _guarded(function: Callable, *args, **kwargs):
        """Run an answer; when it needs the database (a link not yet remembered), inside
        Django's request signals, so its connections are looked after as a request's are."""
        if answers.needs_database(*args):
            signals.request_started.send(sender=TrackingWSGI)
            try:
                return function(*args, **kwargs)
            finally:
                signals.request_finished.send(sender=TrackingWSGI)
        return function(*args, **kwargs)
