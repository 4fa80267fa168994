"""Trigram indexes for the admin's `icontains` search on PostgreSQL, made by migrations.

Django's admin search runs `icontains` as `UPPER(col::text) LIKE UPPER('%term%')`; a
GIN index with pg_trgm's operator class on exactly that expression serves it, at any
table size. pg_trgm is a trusted extension (PostgreSQL 13+), so the database owner
may create it; where it cannot be created, or on SQLite, nothing is made and the
search still works, by a scan. Django's schema cannot express this portably, hence
RunPython.
"""

from __future__ import annotations


def trigram_indexes_create(schema_editor, table: str, columns: list[str]) -> None:
    """Create `<table>_<column>_trgm` for each column (PostgreSQL only, idempotent)."""
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
        if cursor.fetchone() is None:
            try:
                cursor.execute("SAVEPOINT trgm")
                cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
                cursor.execute("RELEASE SAVEPOINT trgm")
            except Exception:  # no right to create it: search stays a scan
                cursor.execute("ROLLBACK TO SAVEPOINT trgm")
                return
        for column in columns:
            cursor.execute(
                f"CREATE INDEX IF NOT EXISTS {table}_{column}_trgm ON {table} "
                f"USING gin ((UPPER({column}::text)) gin_trgm_ops)"
            )


def trigram_indexes_drop(schema_editor, table: str, columns: list[str]) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for column in columns:
            cursor.execute(f"DROP INDEX IF EXISTS {table}_{column}_trgm")
