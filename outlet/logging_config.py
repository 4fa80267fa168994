"""The LOGGING dictionary outlet/settings/ hands to Django.

Two shapes of the same lines: `json` (one object a line, for a log shipper: production's
default) and `text` (readable on a laptop: the default under DEBUG). Both carry the
request, task, issue and donation a line is about, and every handler scrubs addresses,
secrets and link tokens (outlet/core/logs/).
"""

from __future__ import annotations

from typing import Any

LOG_FORMATS = ("json", "text")

#: Every handler's filters, in order: the context first, so it is scrubbed too.
HANDLER_FILTERS = ["log_context", "scrub"]


def logging_config(*, level: str, log_format: str = "text") -> dict[str, Any]:
    if log_format not in LOG_FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "text": {"format": "%(asctime)s %(levelname)s %(name)s%(context)s: %(message)s"},
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "format": "%(levelname)s %(name)s %(message)s",
                "rename_fields": {"levelname": "level", "name": "logger"},
                # `context` is the text format's rendering of the fields already present.
                "reserved_attrs": [*_RESERVED, "context"],
                "timestamp": "time",  # ISO 8601 in UTC, whatever TIME_ZONE says
            },
        },
        "filters": {
            "log_context": {"()": "outlet.core.logs.context.LogContextFilter"},
            "scrub": {"()": "outlet.core.logs.scrubbing.ScrubFilter"},
            # Beat's frequent housekeeping (the tracking flush every 5 s, the issues tick
            # every 10 s, its heartbeat every 30 s, the go-live purge every 15 s): their
            # lines at DEBUG unless a run returned a count of work done
            # (outlet/core/log_filters.py). What they do, they log themselves.
            "idle_tasks": {
                "()": "outlet.core.log_filters.IdleTaskFilter",
                "tasks": [
                    "newsletters.tracking_flush",
                    "newsletters.issues_tick",
                    "core.beat_heartbeat",
                    "articles.scheduled_go_live",
                ],
            },
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": log_format,
                "filters": HANDLER_FILTERS,
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # The stripe library logs request bodies at DEBUG; keep it quiet so no key or
            # card-adjacent data reaches a log.
            "stripe": {"level": "WARNING"},
            # Django's defaults give these handlers of their own, which scrub nothing
            # (runserver's request lines name sign-in links): ours only, through root.
            "django": {"handlers": [], "level": "INFO", "propagate": True},
            "django.server": {"handlers": [], "level": "INFO", "propagate": True},
            **{
                name: {"filters": ["idle_tasks"]}
                for name in ("celery.beat", "celery.worker.strategy", "celery.app.trace")
            },
        },
    }


# LogRecord's own attributes (python-json-logger's default list), kept out of the JSON
# object except those the format names.
_RESERVED = [
    "args", "created", "exc_info", "exc_text", "filename", "funcName", "levelno", "lineno",
    "module", "msecs", "msg", "pathname", "process", "processName", "relativeCreated",
    "stack_info", "thread", "threadName", "taskName",
]  # fmt: skip
