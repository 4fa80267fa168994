"""`manage.py subscribers_import PATH --newsletter SLUG [--newsletter SLUG …]
[--format auto|mailchimp|substack|ghost|csv] [--consent TEXT] [--dry-run]`: the admin's
import upload from the command line, run here and now, printing the report."""

from __future__ import annotations

import contextlib
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from outlet.newsletters.audience.formats import AUTO, Format, ImportFileError
from outlet.newsletters.audience.importing import subscriber_import_create, subscriber_import_run
from outlet.newsletters.audience.reading import audience_file_open
from outlet.newsletters.audience.report import subscriber_import_report_lines
from outlet.newsletters.models import Newsletter

DEFAULT_CONSENT = (
    "Gathered with consent at the previous platform, as stated by whoever ran subscribers_import."
)


class _DryRun(Exception):
    """Raised inside the import's transaction so that a dry run leaves nothing behind."""


class Command(BaseCommand):
    help = (
        "Import subscribers from a Mailchimp audience export (zip or CSV), a Substack "
        "subscriber export, a Ghost members CSV or a CSV with an email column."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument(
            "--newsletter", action="append", required=True, metavar="SLUG",
            help="A newsletter to subscribe the imported readers to (repeat for more).",
        )  # fmt: skip
        parser.add_argument(
            "--format", choices=[AUTO, *Format.values], default=AUTO,
            help="The export's format; by default recognised from its header row.",
        )  # fmt: skip
        parser.add_argument(
            "--consent", default=DEFAULT_CONSENT,
            help="How the people in the file gave consent (kept on each consent record).",
        )  # fmt: skip
        parser.add_argument("--dry-run", action="store_true", help="Report only; write nothing.")

    def handle(self, *args, **options) -> None:
        path: Path = options["path"]
        if not path.is_file():
            raise CommandError(f"{path}: no such file.")
        slugs = list(dict.fromkeys(options["newsletter"]))
        newsletters = list(Newsletter.objects.filter(slug__in=slugs))
        if missing := set(slugs) - {n.slug for n in newsletters}:
            raise CommandError(f"No newsletter with the slug {', '.join(sorted(missing))}.")
        lines: list[str] = []
        # A real run commits a chunk at a time (resumable); a dry run is one transaction
        # rolled back once the report is read.
        scope = transaction.atomic() if options["dry_run"] else contextlib.nullcontext()
        try:
            with scope:
                with path.open("rb") as stream:
                    opened = audience_file_open(stream, requested=options["format"])
                    job = subscriber_import_create(
                        data=stream,
                        filename=path.name,
                        newsletters=newsletters,
                        consent_confirmed=True,
                        consent_text=options["consent"],
                        source_format=options["format"],
                    )
                    job = subscriber_import_run(job=job)
                lines = list(
                    subscriber_import_report_lines(
                        job=job, members=opened.members, skipped=opened.skipped
                    )
                )
                if options["dry_run"]:
                    raise _DryRun
        except ImportFileError as exc:
            raise CommandError(f"{path.name}: {exc} Nothing was imported.") from exc
        except ValidationError as exc:
            problem = " ".join(exc.messages)
            raise CommandError(f"{path.name}: {problem} Nothing was imported.") from exc
        except _DryRun:
            lines.insert(-1, "Dry run: nothing was written.")
        for line in lines:
            self.stdout.write(line)
