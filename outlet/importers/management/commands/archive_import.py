"""`manage.py archive_import {wordpress,substack,…} PATH [--media-dir DIR] [--media-from-site]
[--dry-run] [--since DATE] [--author NAME]` (PATH: a file, or a Substack export folder)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from outlet.importers.services import SOURCES, archive_import


def _date(value: str) -> dt.datetime:
    try:
        day = dt.date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"--since {value!r}: give a date as YYYY-MM-DD.") from exc
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


class Command(BaseCommand):
    help = "Import another platform's archive (articles, pages, people, images, old links)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("source", choices=list(SOURCES))
        parser.add_argument("path", type=Path)
        parser.add_argument(
            "--media-dir", type=Path, help="A local copy of the old uploads folder."
        )
        parser.add_argument(
            "--media-from-site",
            action="store_true",
            help="Fetch images missing from --media-dir from the old site (public addresses only).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Report only; write nothing.")
        parser.add_argument(
            "--since", type=_date, help="Only items published on or after this date."
        )
        parser.add_argument(
            "--author",
            default="",
            help="Substack: who wrote the posts (default: the publication's name, else Staff).",
        )

    def handle(self, *args, **options) -> None:
        if not options["path"].exists():
            raise CommandError(f"{options['path']}: no such file or folder.")
        if options["media_dir"] is not None and not options["media_dir"].is_dir():
            raise CommandError(f"--media-dir {options['media_dir']}: no such folder.")
        report = archive_import(
            source=options["source"],
            path=options["path"],
            media_dir=options["media_dir"],
            media_from_site=options["media_from_site"],
            dry_run=options["dry_run"],
            since=options["since"],
            author=options["author"],
        )
        for line in report.lines():
            self.stdout.write(line)
        if report.fatal:
            raise CommandError("nothing was imported (see above).")
