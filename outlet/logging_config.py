"""The LOGGING dictionary outlet/settings/ hands to Django."""

from __future__ import annotations

from typing import Any


def logging_config(*, level: str) -> dict[str, Any]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        },
        "filters": {
            # Beat's tracking flush runs every 5 s: its lines at DEBUG unless it wrote
            # clicks or opens (outlet/core/log_filters.py).
            "idle_tasks": {
                "()": "outlet.core.log_filters.IdleTaskFilter",
                "tasks": ["newsletters.tracking_flush"],
            },
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # The stripe library logs request bodies at DEBUG; keep it quiet so no key or
            # card-adjacent data reaches a log.
            "stripe": {"level": "WARNING"},
            **{
                name: {"filters": ["idle_tasks"]}
                for name in ("celery.beat", "celery.worker.strategy", "celery.app.trace")
            },
        },
    }
