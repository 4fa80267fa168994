"""An index of the deliveries waiting to be tried again, so a claim finds those come due
first without walking the issue's other rows. Built CONCURRENTLY on PostgreSQL: the
delivery table is the largest there is, and sends go on meanwhile."""

from django.db import migrations, models

from outlet.core.index_operations import AddIndexConcurrentlyWherePossible


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("newsletters", "0013_import_parts"),
    ]

    operations = [
        AddIndexConcurrentlyWherePossible(
            model_name="delivery",
            index=models.Index(
                condition=models.Q(("next_attempt_at__isnull", False), ("status", "pending")),
                fields=["issue", "next_attempt_at"],
                name="delivery_retry_idx",
            ),
        ),
    ]
