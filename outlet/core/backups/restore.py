"""`backup_restore`: bring a backup back into an empty database, then catch up with Stripe.

In order, stopping at the first problem with nothing half-done to the database:
1. read manifest.json and check every part's size and sha256 (before decrypting anything);
2. refuse a backup whose migrations this code does not know (made by a newer release: this
   code would misread its schema), a plain backup where BACKUP_ENCRYPTION_KEY is set, and a
   database that already has tables (unless `force`: pg_restore --clean, and then only
   when no other session is connected to it: never under a running site);
3. stream the dump, decrypted, into `pg_restore --single-transaction` (all or nothing);
4. count the rows of the manifest's tables and compare them with the manifest (exact:
   both come from the dump's snapshot), then move every sequence well past the ids the old
   site gave after the dump (SEQUENCE_GAPS), so none is given again to someone else;
5. with `media`, unpack the media tar into MEDIA_ROOT (tarfile's "data" filter: no
   absolute paths, no `..`, no devices or links out of it);
6. replay Stripe's events from REPLAY_OVERLAP_SECONDS (3 days) before the dump's high-water mark
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
# created before it that failed then (a 503 while Stripe was unreachable, an outage) and
# that Stripe retried to the old site after the dump is still found. Stripe retries a
# live-mode delivery for up to three days, so that is the reach. Repeats are skipped by one
# query per batch (event_replay.py) and change nothing.
REPLAY_OVERLAP_SECONDS = 3 * 24 * 3600
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
    replay_unmatched: list[str] = field(default_factory=list)
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


def _other_sessions() -> int:
    """Connections to this database besides ours (pg_stat_activity shows every user's)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'"
        )
        return int(cursor.fetchone()[0])


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
    key = backup_key()
    if manifest.encrypted and key is None:
        raise BackupError(
            "This backup is encrypted: set BACKUP_ENCRYPTION_KEY to the key it was made with."
        )
    if not manifest.encrypted and key is not None:
        # Where backups are encrypted, a plain one is not taken on trust: its manifest and
        # sha256s prove nothing to someone who could write the backup store.
        raise BackupError(
            "This backup is not encrypted although BACKUP_ENCRYPTION_KEY is set: if you "
            "trust it (an old backup from before the key), restore it with the variable unset."
        )
    if key is not None:
        manifest.authenticate(key)
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
    if tables and (others := _other_sessions()):
        raise BackupError(
            f"{others} other sessions are connected to this database (a running site, its "
            "workers or beat?): --force would replace what they are using. Stop them first "
            "(runbook step 1)."
        )
    report = RestoreReport()
    _restore_database(path / manifest.parts["database"].file, key, force, progress)
    report.rows_checked, report.tables_checked = _check_counts(manifest)
    progress(
        f"rows: {report.rows_checked} rows in {report.tables_checked} tables match the manifest"
    )
    progress(f"ids: {_sequences_advance()} sequences moved past the ids the old site gave after")
    if media:
        report.media_files = _restore_media(path / manifest.parts["media"].file, key)
        progress(f"media: {report.media_files} files restored into MEDIA_ROOT")
    else:
        progress("media: not restored (pass --media to unpack it into MEDIA_ROOT)")
    report.migrate_needed = _migrations_pending()
    if replay:
        _replay(manifest, report, progress)
    else:
        report.replay_since = _replay_mark(manifest) - REPLAY_OVERLAP_SECONDS
        progress(
            "stripe: not replayed (asked not to): payments after the dump are missing until "
            f"`manage.py stripe_events_replay --since {report.replay_since}` runs"
        )
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


# How far each sequence jumps after a restore, by its type. The old site went on handing
# out ids after the dump: to a donation named in a PaymentIntent's metadata, a reader whose
# sign-in link sits in a mailbox, a checkout token in a browser. Given again, each would
# point at a different person. No site makes this many rows between a dump and a restore.
SEQUENCE_GAPS = {"bigint": 1_000_000_000, "integer": 1_000_000, "smallint": 1_000}


def _sequences_advance() -> int:
    """Move every sequence of the restored schema past any id the old site could have
    given after the dump; how many moved."""
    moved = 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT schemaname, sequencename, data_type::text, "
            "COALESCE(last_value, start_value), max_value FROM pg_sequences "
            "WHERE schemaname = current_schema()"
        )
        for schema, name, data_type, last, maximum in cursor.fetchall():
            gap = SEQUENCE_GAPS.get(data_type, 1_000)
            target = last + gap if maximum - last > 2 * gap else last + (maximum - last) // 2
            if target <= last:
                continue
            qualified = connection.ops.quote_name(schema) + "." + connection.ops.quote_name(name)
            cursor.execute("SELECT setval(%s::regclass, %s, true)", [qualified, target])
            moved += 1
    return moved


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


def _replay_mark(manifest: Manifest) -> int:
    """The dump's newest applied Stripe event (Stripe's clock), else the snapshot's time."""
    if manifest.stripe_event_high_water is not None:
        return manifest.stripe_event_high_water
    return int(datetime.fromisoformat(manifest.created_at.replace("Z", "+00:00")).timestamp())


def _replay(manifest: Manifest, report: RestoreReport, progress: Progress) -> None:
    from outlet.donations.event_replay import stripe_events_replay
    from outlet.donations.stripe_gateway import StripeError

    mark = _replay_mark(manifest)
    since = report.replay_since = mark - REPLAY_OVERLAP_SECONDS
    if report.migrate_needed:
        progress(
            "stripe: not replayed before `manage.py migrate`; run it, then "
            f"`manage.py stripe_events_replay --since {since}`"
        )
        return
    if mark < time.time() - STRIPE_EVENTS_KEPT_SECONDS:
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
    report.replay_unmatched = replayed.unmatched
    progress(f"stripe: replayed from {since} (epoch s): {report.replay_summary}")
