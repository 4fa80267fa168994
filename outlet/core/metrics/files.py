"""The counter files of prometheus-client's multiprocess mode in PROMETHEUS_MULTIPROC_DIR:
one per process and kind (`counter_1234.db`), summed at every scrape."""

from __future__ import annotations

import os
import re
from pathlib import Path

from django.conf import settings

_PID = re.compile(r"_(\d+)\.db$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_mark_dead(*, pid: int) -> None:
    """A process of the stack has ended (a gunicorn worker, a Celery pool process): its
    live gauges stop counting (prometheus-client's `mark_process_dead`). Its counter files
    stay, on purpose: they hold what it counted, and a total that fell back would read as
    a restart. They go when the whole stack starts again (`metrics_files_clear`)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, str(settings.METRICS_DIR))


def metrics_files_clear(*, dead_only: bool = False) -> int:
    """Delete the counter files left in PROMETHEUS_MULTIPROC_DIR: all of them when a stack
    starts (its counters start again from zero, which Prometheus reads as a restart), or
    with `dead_only` those of processes that have ended (the test suite, which keeps its
    own process's files open). How many it deleted."""
    deleted = 0
    for path in Path(settings.METRICS_DIR).glob("*.db"):
        match = _PID.search(path.name)
        if dead_only and (match is None or _alive(int(match.group(1)))):
            continue
        path.unlink(missing_ok=True)
        deleted += 1
    return deleted
