"""Migration 0013: imports recorded with their file as one text keep their rows."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("newsletters", "0012_subscriber_admin_indexes")]
AFTER = [("newsletters", "0013_import_parts")]


@pytest.mark.django_db(transaction=True)
def test_an_import_recorded_as_one_text_is_split_into_parts_with_its_line_numbers():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old_apps = executor.loader.project_state(BEFORE).apps
    SubscriberImport = old_apps.get_model("newsletters", "SubscriberImport")
    rows = "".join(f"Reader {n},r{n}@example.com\r\n" for n in range(2500))
    job = SubscriberImport.objects.create(
        filename="old.csv",
        content='Name,Email\r\n"Two\nlines",two@example.com\r\n\r\n' + rows,
        consent_text="old form",
        total_rows=2501,
    )

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    Part = executor.loader.project_state(AFTER).apps.get_model(
        "newsletters", "SubscriberImportPart"
    )
    parts = list(Part.objects.filter(job_id=job.pk).order_by("first_row"))

    assert [(part.first_row, len(part.rows)) for part in parts] == [
        (0, 1000),
        (1000, 1000),
        (2000, 501),
    ]
    assert parts[0].rows[:2] == [
        [3, "two@example.com", "Two\nlines"],
        [5, "r0@example.com", "Reader 0"],
    ]
    assert parts[2].rows[-1] == [2504, "r2499@example.com", "Reader 2499"]

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
