"""Review (issue 25): what `manage.py backup` / `restore` say when PostgreSQL's tools fail
goes to cron's mail and the logs."""

from __future__ import annotations

import pytest

from outlet.core.backups.crypto import BackupError


def test_a_failing_tool_s_message_carries_no_reader_data():
    """pg_restore quotes the row it choked on (DETAIL: Key (email)=(…)); the error goes to
    cron's mail and the logs, so the data must not."""
    import subprocess

    from outlet.core.backups import postgres

    stderr = (
        "pg_restore: error: could not execute query: ERROR:  duplicate key value violates "
        'unique constraint "newsletters_subscriber_email_key"\\n'
        "DETAIL:  Key (email)=(reader@example.org) already exists.\\n"
        'CONTEXT:  COPY newsletters_subscriber, line 1: \\"7\\treader@example.org\\tAda\\"\\n'
    )
    process = subprocess.Popen(  # noqa: S603
        ["/bin/sh", "-c", f'printf "{stderr}" >&2; exit 1'], stderr=subprocess.PIPE
    )
    with pytest.raises(BackupError) as failed:
        postgres.finish(process, "pg_restore")
    assert "duplicate key value" in str(failed.value)
    assert "reader@example.org" not in str(failed.value)
    assert "Ada" not in str(failed.value)
