"""Task runtimes and outcomes from Celery's own signals, for every task alike.

Connected by outlet/celery.py in every process that runs tasks; a pool process that
ends is marked dead (files.process_mark_dead). The start time is
kept per task id in this process (prerun and postrun run in the process that ran
the task), so no task's arguments are ever read.
"""

from __future__ import annotations

import os
import time
from typing import Any

from celery import signals

from .files import process_mark_dead

_started: dict[str, float] = {}


def _name(sender: Any) -> str:
    return str(getattr(sender, "name", None) or "unknown")


def _task_prerun(task_id: str = "", **_: Any) -> None:
    _started[task_id] = time.perf_counter()


def _task_postrun(
    task_id: str = "", sender: Any = None, state: str | None = None, **_: Any
) -> None:
    # Imported here: outlet/celery.py connects these while settings may still be loading.
    from .instruments import celery_task_record, db_timings_flush

    started = _started.pop(task_id, None)
    seconds = time.perf_counter() - started if started is not None else None
    outcome = {"SUCCESS": "succeeded", "FAILURE": "failed", "RETRY": "retried"}.get(
        state or "", "other"
    )
    celery_task_record(task=_name(sender), state=outcome, seconds=seconds)
    db_timings_flush()


def _process_shutdown(pid: int | None = None, **_: Any) -> None:
    process_mark_dead(pid=pid or os.getpid())


def celery_metrics_connect() -> None:
    signals.worker_process_shutdown.connect(
        _process_shutdown, weak=False, dispatch_uid="metrics-process-shutdown"
    )
    signals.task_prerun.connect(_task_prerun, weak=False, dispatch_uid="metrics-prerun")
    signals.task_postrun.connect(_task_postrun, weak=False, dispatch_uid="metrics-postrun")
