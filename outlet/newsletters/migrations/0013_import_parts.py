"""An import's file is stored as parts of rows instead of one text column, so neither
the upload, a run nor the report holds a million-row file in memory. Imports already
recorded have their text split into parts here (their reports stay whole)."""

import csv
import io
import itertools

import django.db.models.deletion
from django.db import migrations, models

CHUNK_ROWS = 1000


def _rows(content: str):
    """The data rows of an import's text as the import then read them."""
    reader = csv.reader(io.StringIO(content, newline=""))
    header = [column.strip().lower() for column in next(reader, [])]
    if "email" not in header:
        return
    email_at = header.index("email")
    name_at = header.index("name") if "name" in header else None
    for values in reader:
        if any(value.strip() for value in values):
            email = values[email_at] if email_at < len(values) else ""
            name = values[name_at] if name_at is not None and name_at < len(values) else ""
            yield [reader.line_num, email, name]


def content_to_parts(apps, schema_editor):
    SubscriberImport = apps.get_model("newsletters", "SubscriberImport")
    Part = apps.get_model("newsletters", "SubscriberImportPart")
    for job in SubscriberImport.objects.iterator(chunk_size=1):
        first_row = 0
        for chunk in itertools.batched(_rows(job.content), CHUNK_ROWS):
            Part.objects.create(job=job, first_row=first_row, rows=list(chunk))
            first_row += len(chunk)


def parts_to_content(apps, schema_editor):
    """Back to one text per import: the rows as a CSV of email and name (blank and
    header lines are not kept, so report line numbers may differ after going back)."""
    SubscriberImport = apps.get_model("newsletters", "SubscriberImport")
    Part = apps.get_model("newsletters", "SubscriberImportPart")
    for job in SubscriberImport.objects.iterator(chunk_size=1):
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["email", "name"])
        for part in Part.objects.filter(job=job).order_by("first_row"):
            writer.writerows([email, name] for _line, email, name in part.rows)
        SubscriberImport.objects.filter(pk=job.pk).update(content=out.getvalue())


class Migration(migrations.Migration):
    dependencies = [
        ("newsletters", "0012_subscriber_admin_indexes"),
    ]

    operations = [
        migrations.CreateModel(
            name="SubscriberImportPart",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "first_row",
                    models.PositiveIntegerField(
                        help_text="Its first row's index among the data rows."
                    ),
                ),
                (
                    "rows",
                    models.JSONField(help_text="[line, email, name] for each row, as in the file."),
                ),
                (
                    "job",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="parts",
                        to="newsletters.subscriberimport",
                    ),
                ),
            ],
            options={
                "ordering": ["job", "first_row"],
                "constraints": [
                    models.UniqueConstraint(fields=("job", "first_row"), name="import_part_once")
                ],
            },
        ),
        migrations.RunPython(content_to_parts, parts_to_content),
        migrations.RemoveField(model_name="subscriberimport", name="content"),
    ]
