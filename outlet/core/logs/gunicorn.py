"""gunicorn's own logs, scrubbed like the site's.

gunicorn writes its access and error lines itself, not through Django's LOGGING: a
request line names the path, and a sign-in, confirmation or unsubscribe path carries
its token. deploy/gunicorn.conf.py names this class as gunicorn's `logger_class`.
"""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

from .scrubbing import ScrubFilter, text_scrub


class ScrubbingLogger(Logger):
    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.addFilter(ScrubFilter())

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        """The access line's fields (request line, path, query, referer, headers)."""
        return {
            key: text_scrub(value) if isinstance(value, str) else value
            for key, value in super().atoms(resp, req, environ, request_time).items()
        }
