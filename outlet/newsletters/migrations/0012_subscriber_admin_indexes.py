"""Indexes behind the subscribers list at a million rows: its filters (source,
unsubscribes per day) and, on PostgreSQL, trigram indexes for its search by any part
of an address or name (see outlet/core/trigram.py)."""

from django.db import migrations, models

from outlet.core.index_operations import (
    AddIndexConcurrentlyWherePossible,
    column_index_create,
    column_index_drop,
)
from outlet.core.trigram import trigram_indexes_create, trigram_indexes_drop

TABLE, COLUMNS = "newsletters_subscriber", ["email", "name"]


class Migration(migrations.Migration):
    # The indexes build CONCURRENTLY on PostgreSQL: subscribers stay writable meanwhile.
    atomic = False

    dependencies = [
        ("newsletters", "0011_issue_stats_breakdown"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="subscriber",
                    name="unsubscribed_at",
                    field=models.DateTimeField(blank=True, db_index=True, null=True),
                ),
            ],
            database_operations=[
                migrations.RunPython(
                    lambda apps, schema_editor: column_index_create(
                        schema_editor, TABLE, "unsubscribed_at"
                    ),
                    lambda apps, schema_editor: column_index_drop(
                        schema_editor, TABLE, "unsubscribed_at"
                    ),
                    elidable=False,
                ),
            ],
        ),
        AddIndexConcurrentlyWherePossible(
            model_name="subscriber",
            index=models.Index(fields=["source", "created_at"], name="subscriber_source_idx"),
        ),
        migrations.RunPython(
            lambda apps, schema_editor: trigram_indexes_create(schema_editor, TABLE, COLUMNS),
            lambda apps, schema_editor: trigram_indexes_drop(schema_editor, TABLE, COLUMNS),
            elidable=False,
        ),
    ]
