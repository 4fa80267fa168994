"""Running PostgreSQL's own tools (pg_dump, pg_restore) on the configured database.

The connection reaches them through libpq's environment (PGHOST, PGPASSWORD, …), never the
command line, where any user of the machine could read a password in `ps`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
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
    return subprocess.Popen(  # noqa: S603 (our own arguments, no shell)
        [tool(name), *arguments],
        env=libpq_environment(),
        stdin=stdin,
        stdout=stdout,
        stderr=subprocess.PIPE,
    )


def finish(process: subprocess.Popen[bytes], what: str) -> None:
    """Wait for the tool; BackupError with the end of its stderr when it failed."""
    stderr: IO[bytes] | None = process.stderr
    message = stderr.read().decode("utf-8", "replace") if stderr else ""
    if process.wait() != 0:
        tail = "\n".join(message.strip().splitlines()[-5:])
        raise BackupError(f"{what} failed (exit {process.returncode}): {tail}")
