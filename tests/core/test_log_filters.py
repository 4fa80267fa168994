"""`make run` stays readable: beat's frequent housekeeping says nothing at INFO unless it
did something; what did work, failures and everything else are untouched."""

from __future__ import annotations

import io
import logging
import logging.config

import pytest
from celery.app.trace import LOG_RECEIVED, LOG_SUCCESS
from django.conf import settings

from outlet.core.log_filters import BEAT_DUE
from outlet.logging_config import logging_config

#: Every beat entry that runs more often than once a minute by default.
FREQUENT = {
    name: entry["task"]
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items()
    if float(entry["schedule"]) < 60
}


@pytest.fixture
def info_stream():
    stream = io.StringIO()
    config = logging_config(level="INFO", log_format="text")
    config["handlers"]["console"]["stream"] = stream
    logging.config.dictConfig(config)
    try:
        yield stream
    finally:
        logging.config.dictConfig(settings.LOGGING)


def _task_lines(task: str, return_value: str) -> None:
    logging.getLogger("celery.beat").info(BEAT_DUE, "entry", task)
    received = {"id": "1", "name": task, "args": "()", "kwargs": "{}", "eta": None}
    logging.getLogger("celery.worker.strategy").info(
        LOG_RECEIVED, received, extra={"data": received}
    )
    done = {"id": "1", "name": task, "return_value": return_value, "runtime": 0.01}
    logging.getLogger("celery.app.trace").info(LOG_SUCCESS, done, extra={"data": done})


def test_the_frequent_beat_tasks_are_the_expected_ones():
    assert set(FREQUENT.values()) >= {
        "newsletters.tracking_flush",
        "newsletters.issues_tick",
        "core.beat_heartbeat",
    }


@pytest.mark.parametrize("task", sorted(set(FREQUENT.values())))
def test_an_idle_run_of_a_frequent_task_says_nothing_at_info(info_stream, task):
    _task_lines(task, "None" if task != "newsletters.tracking_flush" else "0")
    assert info_stream.getvalue() == ""


def test_a_flush_that_wrote_lines_is_still_said(info_stream):
    _task_lines("newsletters.tracking_flush", "12")
    assert "succeeded" in info_stream.getvalue()


def test_other_tasks_keep_their_lines(info_stream):
    _task_lines("newsletters.batch_send", "None")
    assert info_stream.getvalue().count("\n") == 3
