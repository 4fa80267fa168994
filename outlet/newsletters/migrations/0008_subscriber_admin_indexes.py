"""Indexes behind the subscribers list at a million rows: its filters (source,
unsubscribes per day) and, on PostgreSQL, its search. The admin searches with
`icontains`, which PostgreSQL runs as `UPPER(col::text) LIKE UPPER('%term%')`: a
trigram GIN index on exactly that expression serves it. pg_trgm is a trusted
extension (PostgreSQL 13+), so the database owner may create it; where it cannot
be created the search still works, by a scan."""

from django.db import migrations, models

TRIGRAM_INDEXES = [
    ("newsletters_subscriber_email_trgm", "email"),
    ("newsletters_subscriber_name_trgm", "name"),
]


def trigram_indexes_create(apps, schema_editor):
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
        for name, column in TRIGRAM_INDEXES:
            cursor.execute(
                f"CREATE INDEX IF NOT EXISTS {name} ON newsletters_subscriber "
                f"USING gin ((UPPER({column}::text)) gin_trgm_ops)"
            )


def trigram_indexes_drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for name, _column in TRIGRAM_INDEXES:
            cursor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("newsletters", "0007_taken_down_articles_leave_issues"),
    ]

    operations = [
        migrations.AlterField(
            model_name="subscriber",
            name="unsubscribed_at",
            field=models.DateTimeField(blank=True, db_index=True, null=True),
        ),
        migrations.AddIndex(
            model_name="subscriber",
            index=models.Index(fields=["source", "created_at"], name="subscriber_source_idx"),
        ),
        migrations.RunPython(trigram_indexes_create, trigram_indexes_drop, elidable=False),
    ]
