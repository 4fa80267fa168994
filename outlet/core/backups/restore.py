"""`backup_restore`: bring a backup back into an empty database, then catch up with Stripe.

In order, stopping at the first problem with nothing half-done to the database:
1. read manifest.json and check every part's size and sha256 (before decrypting anything);
2. refuse a backup whose migrations this code does not know (made by a newer release: this
   code would misread its schema), and a database that already has tables (unless `force`:
   pg_restore --clean);
3. stream the dump, decrypted, into `pg_restore --single-transaction` (all or nothing);
4. count the rows of the manifest's tables and compare them with the manifest (exact:
   both come from the dump's snapshot);
5. with `media`, unpack the media tar into MEDIA_ROOT (tarfile's "data" filter: no
   absolute paths, no `..`, no devices or links out of it);
6. replay Stripe's events from REPLAY_OVERLAP_SECONDS before the dump's high-water mark
   through the webhook's apply path (donations/event_replay.py): payments Stripe reported
   to the old site after the dump are applied here; events the dump holds are repeats.
"""

from __future__ import annotations

import subprocess
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.migrations.loader import MigrationLoader

from . import manifest as manifest_module
from . import postgres
from .create import backup_key
from .crypto import BackupError, ChunkReader, file_sha256, part_chunks
from .manifest import Manifest

Progress = Callable[[str], None]

# Events created this long before the dump's newest applied one are listed again: one
# created before it but delivered late (Stripe retries a failing endpoint for days) is
# still found. Repeats cost one lookup each and change nothing.
REPLAY_OVERLAP_SECONDS = 3600
# Stripe's events.list reaches back this far, no further.
STRIPE_EVENTS_KEPT_SECONDS = 30 * 24 * 3600


@dataclass
class RestoreReport:
    rows_checked: int = 0
    tables_checked: int = 0
    media_files: int = 0
    replay_summary: str = "not replayed"
    replayed_events: int = 0
    replay_deferred: int = 0
    replay_since: int | None = None
    replay_error: str = ""
    migrate_needed: list[str] = field(default_factory=list)


def backup_verify(*, path: Path) -> Manifest:
    """The backup's manifest, once every part it names is present, of its recorded size
    and sha256; BackupError otherwise."""
    manifest = Manifest.read(path)
    for name, part in manifest.parts.items():
        file = path / part.file
        if not file.is_file():
            raise BackupError(f"The backup's {name} part ({part.file}) is missing.")
        if file.stat().st_size != part.bytes:
            raise BackupError(
                f"The backup's {name} part ({part.file}) is {file.stat().st_size} bytes, "
                f"the manifest says {part.bytes}: cut short or changed."
            )
        if file_sha256(file) != part.sha256:
            raise BackupError(f"The backup's {name} part ({part.file}) fails its sha256 check.")
    return manifest


def _tables_present() -> list[str]:
    return connection.introspection.table_names()


def _unknown_migrations(manifest: Manifest) -> list[str]:
    known = set(MigrationLoader(None, ignore_no_migrations=True).disk_migrations)
    return [
        f"{app}.{name}"
        for app, names in manifest.migrations.items()
        for name in names
        if (app, name) not in known and app in {label for label, _ in known}
    ]


def backup_restore(
    *,
    path: Path,
    media: bool = False,
    force: bool = False,
    replay: bool = True,
    progress: Progress = lambda _: None,
) -> RestoreReport:
    postgres.require_postgresql()
    manifest = backup_verify(path=path)
    progress(
        f"verified: {len(manifest.parts)} parts match their sha256 (made {manifest.created_at})"
    )
    key = backup_key() if manifest.encrypted else None
    if manifest.encrypted and key is None:
        raise BackupError(
            "This backup is encrypted: set BACKUP_ENCRYPTION_KEY to the key it was made with."
        )
    unknown = _unknown_migrations(manifest)
    if unknown:
        raise BackupError(
            "The backup was made by a newer release (migrations unknown here: "
            + ", ".join(unknown[:5])
            + "): deploy that release, then restore."
        )
    tables = _tables_present()
    if tables and not force:
        raise BackupError(
            f"The database already has {len(tables)} tables: restore into an empty database "
            "(createdb a new one), or pass --force to replace what the backup holds."
        )
    report = RestoreReport()
    _restore_database(path / manifest.parts["database"].file, key, force, progress)
    report.rows_checked, report.tables_checked = _check_counts(manifest)
    progress(
        f"rows: {report.rows_checked} rows in {report.tables_checked} tables match the manifest"
    )
    if media:
        report.media_files = _restore_media(path / manifest.parts["media"].file, key)
        progress(f"media: {report.media_files} files restored into MEDIA_ROOT")
    else:
        progress("media: not restored (pass --media to unpack it into MEDIA_ROOT)")
    report.migrate_needed = _migrations_pending()
    if replay:
        _replay(manifest, report, progress)
    return report


def _restore_database(file: Path, key: bytes | None, force: bool, progress: Progress) -> None:
    arguments = ["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"]
    arguments += ["--dbname", str(connection.settings_dict["NAME"])]
    if force:
        arguments += ["--clean", "--if-exists"]
    connections[DEFAULT_DB_ALIAS].close()
    process = postgres.start("pg_restore", arguments, stdin=subprocess.PIPE)
    assert process.stdin is not None
    written = 0
    try:
        with open(file, "rb") as source:
            for chunk in part_chunks(source, key):
                process.stdin.write(chunk)
                written += len(chunk)
        process.stdin.close()
    except BrokenPipeError:
        pass  # pg_restore stopped early: finish() reports why
    except BackupError:
        process.kill()
        process.wait()
        raise
    postgres.finish(process, "pg_restore")
    progress(f"database: {written / 1e6:.1f} MB restored by pg_restore")


def _check_counts(manifest: Manifest) -> tuple[int, int]:
    connections[DEFAULT_DB_ALIAS].close()
    counts = manifest_module.row_counts()
    wrong = [
        f"{label}: {counts.get(label)} restored, {expected} in the backup"
        for label, expected in manifest.row_counts.items()
        if counts.get(label) != expected
    ]
    if wrong:
        raise BackupError("Row counts differ from the manifest: " + "; ".join(wrong))
    return sum(manifest.row_counts.values()), len(manifest.row_counts)


def _restore_media(file: Path, key: bytes | None) -> int:
    root = Path(settings.MEDIA_ROOT)
    root.mkdir(parents=True, exist_ok=True)
    files = 0
    with open(file, "rb") as source:
        reader = ChunkReader(part_chunks(source, key))
        with tarfile.open(fileobj=reader, mode="r|") as tar:
            for member in tar:
                tar.extract(member, root, filter="data")
                files += member.isfile()
    return files


def _migrations_pending() -> list[str]:
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _ in plan]


def _replay(manifest: Manifest, report: RestoreReport, progress: Progress) -> None:
    from outlet.donations.event_replay import stripe_events_replay
    from outlet.donations.stripe_gateway import StripeError

    if report.migrate_needed:
        progress(
            "stripe: not replayed before `manage.py migrate`; run it, then stripe_events_replay"
        )
        return
    mark = manifest.stripe_event_high_water
    if mark is None:
        mark = int(datetime.fromisoformat(manifest.created_at.replace("Z", "+00:00")).timestamp())
    since = report.replay_since = mark - REPLAY_OVERLAP_SECONDS
    if since < time.time() - STRIPE_EVENTS_KEPT_SECONDS:
        progress(
            "stripe: WARNING the dump is older than the 30 days Stripe keeps events for: "
            "payments between the dump and 30 days ago are not replayed; compare the "
            "donations with Stripe's dashboard for that time"
        )
    try:
        replayed = stripe_events_replay(since=since)
    except StripeError as exc:
        # The database is restored; only the catch-up waits. Say how to finish it.
        report.replay_error = type(exc).__name__
        progress(f"stripe: events could not be read ({report.replay_error}); nothing replayed")
        return
    report.replay_summary = replayed.summary()
    report.replayed_events = replayed.applied
    report.replay_deferred = replayed.deferred
    progress(f"stripe: replayed from {since} (epoch s): {report.replay_summary}")
