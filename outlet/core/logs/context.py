"""The ids a log line is about, kept in contextvars so every line says them.

A request binds `request_id` (request_id.py); a Celery task binds `task_id`, `task_name`
and the `issue_id` / `donation_id` among its arguments (the task signals below); a
service working on one issue or donation binds it with `log_context` or
`@log_context_from`. Each binding is undone when its scope ends, so an eager task or a
loop over donations never leaves its ids on the lines that follow.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
from collections.abc import Callable, Iterator
from contextvars import ContextVar, Token
from typing import Any

#: The fields, in the order the text format prints them.
FIELDS = ("request_id", "task_id", "task_name", "issue_id", "donation_id")

_vars: dict[str, ContextVar[Any]] = {
    name: ContextVar(f"outlet_log_{name}", default=None) for name in FIELDS
}


def log_context_current() -> dict[str, Any]:
    """The fields bound now (those with a value)."""
    return {name: var.get() for name, var in _vars.items() if var.get() is not None}


def log_context_bind(**fields: Any) -> dict[str, Token[Any]]:
    """Bind fields until `log_context_reset` with the tokens returned. Prefer
    `log_context`, which resets by itself; this pair is for signal handlers."""
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError(f"Unknown log context field(s): {', '.join(sorted(unknown))}")
    return {name: _vars[name].set(value) for name, value in fields.items()}


def log_context_reset(tokens: dict[str, Token[Any]]) -> None:
    for name, token in tokens.items():
        with contextlib.suppress(ValueError):  # bound in another context: leave it
            _vars[name].reset(token)


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Every line logged inside carries these fields (None values are skipped)."""
    tokens = log_context_bind(**{k: v for k, v in fields.items() if v is not None})
    try:
        yield
    finally:
        log_context_reset(tokens)


#: Arguments a service or task may take, and the field each gives.
_ARGUMENT_FIELDS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "issue_id": ("issue_id", lambda value: value),
    "issue": ("issue_id", lambda value: getattr(value, "pk", None)),
    "donation_id": ("donation_id", lambda value: value),
    "donation": ("donation_id", lambda value: getattr(value, "pk", None)),
}


#: A task's or service's parameters, read once per function.
_signature = functools.cache(inspect.signature)


def context_from_arguments(function: Callable[..., Any], args: Any, kwargs: Any) -> dict[str, Any]:
    """The issue and donation ids among a call's arguments, by parameter name."""
    try:
        bound = _signature(function).bind_partial(*(args or ()), **(kwargs or {}))
    except (TypeError, ValueError):
        return {}
    fields: dict[str, Any] = {}
    for argument, (field, read) in _ARGUMENT_FIELDS.items():
        if argument in bound.arguments:
            value = read(bound.arguments[argument])
            if isinstance(value, int | str) and value != "":
                fields[field] = value
    return fields


def log_context_from[**P, R](function: Callable[P, R]) -> Callable[P, R]:
    """Decorate a service: its `issue`/`issue_id`/`donation`/`donation_id` argument is
    bound for the call."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with log_context(**context_from_arguments(function, args, kwargs)):
            return function(*args, **kwargs)

    return wrapper


class LogContextFilter(logging.Filter):
    """Adds the bound fields to each record (as attributes, for the JSON formatter) and
    `context`, the same as `key=value` text for the readable format."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = log_context_current()
        for name in FIELDS:
            if name in current and not hasattr(record, name):
                setattr(record, name, current[name])
        if not hasattr(record, "context"):
            text = " ".join(f"{k}={v}" for k, v in current.items())
            record.context = f" [{text}]" if text else ""
        return True


# --- Celery -------------------------------------------------------------------

_task_tokens: dict[str, dict[str, Token[Any]]] = {}


def _task_prerun(
    task_id: str = "", task: Any = None, args: Any = None, kwargs: Any = None, **_: Any
) -> None:
    fields: dict[str, Any] = {"task_id": task_id, "task_name": getattr(task, "name", None)}
    run = getattr(task, "run", None)
    if run is not None:
        fields.update(context_from_arguments(run, args, kwargs))
    _task_tokens[task_id] = log_context_bind(**{k: v for k, v in fields.items() if v})


def _task_postrun(task_id: str = "", **_: Any) -> None:
    tokens = _task_tokens.pop(task_id, None)
    if tokens is not None:
        log_context_reset(tokens)


def celery_log_context_connect() -> None:
    """Bind the task's ids for the lines logged while it runs (Celery's own "succeeded"
    and "failed" lines included: they are logged before postrun)."""
    from celery import signals

    signals.task_prerun.connect(_task_prerun, weak=False, dispatch_uid="log-context-prerun")
    signals.task_postrun.connect(_task_postrun, weak=False, dispatch_uid="log-context-postrun")
