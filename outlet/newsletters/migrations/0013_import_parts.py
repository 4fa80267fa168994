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
    """Back to one text per import: a CSV of email, name and the row's line, each row
    ending on its original line (blank lines between), so every row is read again (the
    line column is never empty) with the line number its report gives."""
    SubscriberImport = apps.get_model("newsletters", "SubscriberImport")
    Part = apps.get_model("newsletters", "SubscriberImportPart")
    for job in SubscriberImport.objects.iterator(chunk_size=1):
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["email", "name", "line"])
        at = 1  # the line the text so far ends on
        for part in Part.objects.filter(job=job).order_by("first_row"):
            for line, email, name in part.rows:
                row = io.StringIO()
                csv.writer(row).writerow([email, name, line])
                spans = sum(1 for _ in io.StringIO(row.getvalue(), newline=""))
                out.write("\r\n" * max(line - at - spans, 0) + row.getvalue())
                at = max(line, at + spans)
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
                "ordering": ["job_id", "first_row"],
                "constraints": [
                    models.UniqueConstraint(fields=("job", "first_row"), name="import_part_once")
                ],
            },
        ),
        migrations.CreateModel(
            name="SubscriberImportAddress",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("email_hash", models.CharField(max_length=64)),
                (
                    "job",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="newsletters.subscriberimport",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("job", "email_hash"), name="import_address_once"
                    )
                ],
            },
        ),
        migrations.AlterModelOptions(
            name="subscriberimportrefusal", options={"ordering": ["job_id", "line"]}
        ),
        migrations.RunPython(content_to_parts, parts_to_content),
        # A default, so that going back can add the column again to existing imports.
        migrations.AlterField(
            model_name="subscriberimport", name="content", field=models.TextField(default="")
        ),
        migrations.RemoveField(model_name="subscriberimport", name="content"),
    ]
