"""`manage.py backup [--output DIR]`: a consistent, optionally encrypted backup of the
PostgreSQL database and the uploaded media (outlet/core/backups/create.py)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from outlet.core.backups.create import backup_create
from outlet.core.backups.crypto import BackupError


class Command(BaseCommand):
    help = "Back up the database (pg_dump, one snapshot) and MEDIA_ROOT, with a manifest."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--output", type=Path, default=None, help="Directory to write into (BACKUP_DIR)."
        )

    def handle(self, *args: object, **options: object) -> None:
        output = options["output"] or settings.BACKUP_DIR
        assert isinstance(output, Path)
        try:
            directory = backup_create(output_dir=output, progress=self.stdout.write)
        except BackupError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(str(directory))
