"""Trigram indexes behind the donations list's search on PostgreSQL: donors by any
part of their address or name (see outlet/core/trigram.py)."""

from django.db import migrations

from outlet.core.trigram import trigram_indexes_create, trigram_indexes_drop

TABLE, COLUMNS = "donations_donor", ["email", "name"]


class Migration(migrations.Migration):
    # The trigram indexes build CONCURRENTLY on PostgreSQL (outlet/core/trigram.py).
    atomic = False

    dependencies = [
        ("donations", "0006_donor_email_lower_index"),
    ]

    operations = [
        migrations.RunPython(
            lambda apps, schema_editor: trigram_indexes_create(schema_editor, TABLE, COLUMNS),
            lambda apps, schema_editor: trigram_indexes_drop(schema_editor, TABLE, COLUMNS),
            elidable=False,
        ),
    ]
