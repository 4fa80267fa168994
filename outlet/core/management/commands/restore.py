"""`manage.py restore PATH [--media] [--force] [--no-replay]`: a backup made by
`manage.py backup` back into an empty database, then Stripe's events since the dump
replayed (outlet/core/backups/restore.py; the runbook is in docs/operations.md)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from outlet.core.backups.crypto import BackupError
from outlet.core.backups.restore import backup_restore
from outlet.donations.event_replay import unmatched_message


class Command(BaseCommand):
    help = "Restore a backup directory into an empty database and replay Stripe's events."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="The backup's directory (outlet-backup-…).")
        parser.add_argument("--media", action="store_true", help="Also unpack MEDIA_ROOT.")
        parser.add_argument(
            "--force", action="store_true", help="Restore over a database that has tables."
        )
        parser.add_argument(
            "--no-replay", action="store_true", help="Do not replay Stripe's events."
        )

    def handle(self, *args: object, **options: object) -> None:
        path = options["path"]
        assert isinstance(path, Path)
        try:
            report = backup_restore(
                path=path,
                media=bool(options["media"]),
                force=bool(options["force"]),
                replay=not options["no_replay"],
                progress=self.stdout.write,
            )
        except BackupError as exc:
            raise CommandError(str(exc)) from None
        if report.migrate_needed:
            raise CommandError(
                f"The database is restored, but {len(report.migrate_needed)} migrations of "
                "this release are not in the backup, and Stripe's events since the dump are "
                "not replayed yet: run `manage.py migrate`, then "
                f"`manage.py stripe_events_replay --since {report.replay_since}`."
            )
        if report.replay_deferred or report.replay_error:
            raise CommandError(
                "The database is restored, but Stripe's events since the dump are not all "
                "applied (Stripe unreachable): when it answers, run "
                f"`manage.py stripe_events_replay --since {report.replay_since}`."
            )
        if report.replay_unmatched:
            raise CommandError(
                "The database is restored and Stripe's events replayed, but "
                + unmatched_message(report.replay_unmatched)
            )
        self.stdout.write(
            f"restored: rows_checked={report.rows_checked} media_files={report.media_files} "
            f"replayed_events={report.replayed_events}"
        )
