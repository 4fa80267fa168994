"""The tracking flush runs every five seconds: `make run` (INFO) shows a flush only when it
wrote clicks or opens; an idle one logs at DEBUG (beat's "due", the worker's "received"
and "succeeded" lines alike)."""

from __future__ import annotations

import logging

import pytest
from celery import beat
from celery.app.trace import LOG_RECEIVED

from outlet.newsletters.measuring import recording
from outlet.newsletters.tasks import tracking_flush_task

pytestmark = pytest.mark.django_db


def flush_lines(caplog) -> list[tuple[str, str]]:
    return [
        (record.levelname, record.getMessage())
        for record in caplog.records
        if "tracking_flush" in record.getMessage() or "tracking-flush" in record.getMessage()
    ]


def run_flush_from_beat(monkeypatch, *, lines_written: int) -> None:
    """Beat says the flush is due, a worker receives it (Celery's own log lines, as the
    worker writes them), then the task runs."""
    monkeypatch.setattr(recording, "tracking_flush", lambda: lines_written)
    beat.info("Scheduler: Sending due task %s (%s)", "newsletters-tracking-flush",
              tracking_flush_task.name)  # fmt: skip
    context = {"id": "t1", "name": tracking_flush_task.name, "args": "()", "kwargs": "{}"}
    logging.getLogger("celery.worker.strategy").info(LOG_RECEIVED, context, extra={"data": context})
    tracking_flush_task.apply(task_id="t1")


def test_a_flush_that_wrote_nothing_logs_at_debug(caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)

    run_flush_from_beat(monkeypatch, lines_written=0)

    lines = flush_lines(caplog)
    assert [level for level, _ in lines] == ["DEBUG", "DEBUG", "DEBUG"]
    assert "succeeded" in lines[-1][1]


def test_at_info_an_idle_flush_prints_nothing(caplog, monkeypatch):
    caplog.set_level(logging.INFO)

    run_flush_from_beat(monkeypatch, lines_written=0)

    assert flush_lines(caplog) == []


def test_a_flush_that_wrote_lines_still_logs_at_info(caplog, monkeypatch):
    caplog.set_level(logging.INFO)

    run_flush_from_beat(monkeypatch, lines_written=12)

    ((level, message),) = flush_lines(caplog)
    assert level == "INFO" and "succeeded" in message and message.endswith(": 12")


def test_other_tasks_keep_their_info_lines(caplog):
    caplog.set_level(logging.INFO)
    context = {"id": "t2", "name": "newsletters.batch_send", "args": "()", "kwargs": "{}"}

    logging.getLogger("celery.worker.strategy").info(LOG_RECEIVED, context, extra={"data": context})

    assert [r.levelname for r in caplog.records if "batch_send" in r.getMessage()] == ["INFO"]
