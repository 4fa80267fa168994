"""Logging filters named in `settings.LOGGING`."""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable

from celery.app.trace import LOG_RECEIVED, LOG_SUCCESS

BEAT_DUE = "Scheduler: Sending due task %s (%s)"
#: What an idle run returns: a count of nothing done, or nothing (a tick, a heartbeat).
IDLE_RETURNS = frozenset({"0", "None"})


class IdleTaskFilter(logging.Filter):
    """Celery's INFO lines about a frequent beat task are logged at DEBUG unless its run
    did something: beat's "Sending due task", the worker's "received" (said before
    anyone knows) and "succeeded" when the task returned 0 (a count of nothing done) or
    None (a tick or heartbeat, whose work, if any, logs its own lines).
    A run that returned more keeps its "succeeded" line at INFO; failures and retries are
    untouched. Attach it to the loggers Celery writes them to (`celery.beat`,
    `celery.worker.strategy`, `celery.app.trace`): a logger's filter sees only its own
    records, and a demoted one is dropped unless that logger is enabled for DEBUG."""

    def __init__(self, tasks: Iterable[str] = ()) -> None:
        super().__init__()
        self.tasks = frozenset(tasks)

    def filter(self, record: logging.LogRecord) -> bool | logging.LogRecord:
        if record.levelno != logging.INFO or not self._idle(record):
            return True
        if not logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
            return False
        quiet = copy.copy(record)
        quiet.levelno, quiet.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return quiet

    def _idle(self, record: logging.LogRecord) -> bool:
        if record.msg == BEAT_DUE:
            args = record.args
            return isinstance(args, tuple) and len(args) == 2 and args[1] in self.tasks
        data = getattr(record, "data", None)
        if not isinstance(data, dict) or data.get("name") not in self.tasks:
            return False
        if record.msg == LOG_RECEIVED:
            return True
        return record.msg == LOG_SUCCESS and data.get("return_value") in IDLE_RETURNS
