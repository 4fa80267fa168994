"""Trigram indexes for the admin's `icontains` search on PostgreSQL, made by migrations.

Django's admin search runs `icontains` as `UPPER(col::text) LIKE UPPER('%term%')`; a
GIN index with pg_trgm's operator class on exactly that expression serves it, at any
table size. pg_trgm is a trusted extension (PostgreSQL 13+), so the database owner
may create it; where it cannot be created, or on SQLite, nothing is made and the
search still works, by a scan. Django's schema cannot express this portably, hence
RunPython. Built CONCURRENTLY (migrations atomic = False): see outlet/core/index_operations.py.
"""

from __future__ import annotations


def trigram_indexes_create(schema_editor, table: str, columns: list[str]) -> None:
    """Create `<table>_<column>_trgm` for each column (PostgreSQL only, idempotent)."""
    if schema_editor.connection.vendor != "postgresql":
        return
    from django.db import transaction

    connection = schema_editor.connection
    # CONCURRENTLY: writes to the table go on while the index builds (the migrations
    # calling this are atomic = False); inside a transaction it cannot be used.
    concurrently = "" if connection.in_atomic_block else "CONCURRENTLY "
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
        if cursor.fetchone() is None:
            try:
                with transaction.atomic(using=connection.alias):
                    cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            except Exception:  # no right to create it: search stays a scan
                return
        for column in columns:
            cursor.execute(
                f"CREATE INDEX {concurrently}IF NOT EXISTS {table}_{column}_trgm ON {table} "
                f"USING gin ((UPPER({column}::text)) gin_trgm_ops)"
            )


def trigram_indexes_drop(schema_editor, table: str, columns: list[str]) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for column in columns:
            cursor.execute(f"DROP INDEX IF EXISTS {table}_{column}_trgm")
