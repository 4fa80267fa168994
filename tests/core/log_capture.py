"""Capture everything the configured logging writes, at DEBUG for every logger, through
the handler settings.LOGGING builds (its filters and formatter included)."""

from __future__ import annotations

import io
import json
import logging
import logging.config
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings

from outlet.logging_config import logging_config


@contextmanager
def logs_captured(
    *, log_format: str = "json", without_filters: tuple[str, ...] = ()
) -> Iterator[io.StringIO]:
    """Every line the site would write, in `log_format`; `without_filters` removes
    handler filters by name (to prove a test would notice)."""
    stream = io.StringIO()
    config: dict[str, Any] = logging_config(level="DEBUG", log_format=log_format)
    handler = config["handlers"]["console"]
    handler["stream"] = stream
    handler["filters"] = [name for name in handler["filters"] if name not in without_filters]
    for logger in config["loggers"].values():
        logger["level"] = "DEBUG"
    levels = {
        name: logger.level
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    logging.config.dictConfig(config)
    for name in levels:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        logging.config.dictConfig(settings.LOGGING)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
