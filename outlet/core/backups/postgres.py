"""Running PostgreSQL's own tools (pg_dump, pg_restore) on the configured database.

The connection reaches them through libpq's environment (PGHOST, PGPASSWORD, …), never the
command line, where any user of the machine could read a password in `ps`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from typing import IO

from django.db import connection

from .crypto import BackupError


def require_postgresql() -> None:
    if connection.vendor != "postgresql":
        raise BackupError(
            "backup and restore work on PostgreSQL, the production database "
            "(DATABASE_URL=postgres://…). This site runs on "
            f"{connection.vendor}: on a laptop, stop `make run` and copy var/ instead."
        )


def libpq_environment() -> dict[str, str]:
    params = connection.settings_dict
    env = {**os.environ}
    for key, name in (("HOST", "PGHOST"), ("PORT", "PGPORT"), ("USER", "PGUSER")):
        if params.get(key):
            env[name] = str(params[key])
    if params.get("PASSWORD"):
        env["PGPASSWORD"] = str(params["PASSWORD"])
    if (params.get("OPTIONS") or {}).get("sslmode"):
        env["PGSSLMODE"] = str(params["OPTIONS"]["sslmode"])
    env["PGDATABASE"] = str(params["NAME"])
    return env


def tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        raise BackupError(f"{name} is not installed: apt-get install postgresql-client")
    return path


def start(
    name: str, arguments: Iterable[str], *, stdin: int | None = None, stdout: int | None = None
) -> subprocess.Popen[bytes]:
    # stderr to a file, not a pipe: the caller drains stdout first, and a tool writing more
    # than a pipe's buffer of warnings meanwhile would block and hang the backup.
    errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed by finish)
    process = subprocess.Popen(  # noqa: S603 (our own arguments, no shell)
        [tool(name), *arguments],
        env=libpq_environment(),
        stdin=stdin,
        stdout=stdout,
        stderr=errors,
    )
    setattr(process, _ERRORS, errors)
    return process


_ERRORS = "outlet_stderr_file"


def finish(process: subprocess.Popen[bytes], what: str) -> None:
    """Wait for the tool; BackupError with the end of its stderr when it failed."""
    errors: IO[bytes] | None = getattr(process, _ERRORS, None)
    message = ""
    if errors is None and process.stderr is not None:  # a process not made by start()
        message = process.stderr.read().decode("utf-8", "replace")
    returncode = process.wait()
    if errors is not None:
        with errors:
            errors.seek(0)
            message = errors.read().decode("utf-8", "replace")
    if returncode != 0:
        tail = "\n".join(_without_data(message.strip().splitlines())[-5:])
        raise BackupError(f"{what} failed (exit {process.returncode}): {tail}")


# PostgreSQL quotes the row a statement failed on: in DETAIL (`Key (email)=(…)`, `Failing
# row contains (…)`) and in CONTEXT (`COPY table, line 7: "…the row…"`). This message goes
# to cron's mail and the logs: keep what failed, never the readers' data.
_QUOTED_ROW = re.compile(r'(line \d+)(: ".*|, column .*)', re.DOTALL)


def _without_data(lines: list[str]) -> list[str]:
    kept = []
    for line in lines:
        if line.strip().startswith("DETAIL:"):
            continue
        kept.append(_QUOTED_ROW.sub(r"\1: (row not shown)", line))
    return kept
