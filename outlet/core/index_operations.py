"""Index migrations on tables that are large in production (subscribers, donors).

A plain CREATE INDEX holds a lock that blocks every write to the table while the index
builds: minutes at a million subscribers, during which sign-ups, unsubscribes, bounces
and donation webhooks wait. On PostgreSQL these build CONCURRENTLY instead (the
migration must be `atomic = False`); elsewhere (SQLite in development and tests) they
are ordinary indexes. See docs/scale.md, "Index migrations".
"""

from __future__ import annotations

from typing import Any

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db.migrations.operations import AddIndex


class AddIndexConcurrentlyWherePossible(AddIndexConcurrently):
    """AddIndexConcurrently on PostgreSQL, a plain AddIndex on other databases."""

    def database_forwards(self, app_label: str, schema_editor: Any, from_state, to_state) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
        else:
            AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label: str, schema_editor: Any, from_state, to_state) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
        else:
            AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)


def column_index_create(schema_editor: Any, table: str, column: str) -> None:
    """The index `db_index=True` makes on a column, under Django's own name; built
    CONCURRENTLY on PostgreSQL outside a transaction, and only if missing."""
    name = schema_editor._create_index_name(table, [column], suffix="")
    quote = schema_editor.quote_name
    concurrently = (
        "CONCURRENTLY "
        if schema_editor.connection.vendor == "postgresql"
        and not schema_editor.connection.in_atomic_block
        else ""
    )
    schema_editor.execute(
        f"CREATE INDEX {concurrently}IF NOT EXISTS {quote(name)} "
        f"ON {quote(table)} ({quote(column)})"
    )


def column_index_drop(schema_editor: Any, table: str, column: str) -> None:
    name = schema_editor._create_index_name(table, [column], suffix="")
    schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")
