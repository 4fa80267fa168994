"""`backup_create`: one consistent backup in a directory of its own.

1. A REPEATABLE READ transaction exports its snapshot (`pg_export_snapshot()`); the
   manifest's facts are read in it, and `pg_dump -Fc --snapshot=…` dumps exactly that
   snapshot. So the row counts, the migrations and the Stripe high-water mark describe
   the dump itself, even while workers keep sending and webhooks keep landing.
2. The dump streams from pg_dump through the encryption (when BACKUP_ENCRYPTION_KEY is
   set) into its file in 1 MiB pieces: a dump of any size, in constant memory.
3. MEDIA_ROOT is streamed into a tar the same way, after the dump. (Uploads are only ever
   added, so a file written meanwhile is merely extra.) IMPORTS_ROOT is left out: it holds
   exports uploaded to be imported once, drafts and readers' addresses, which the
   database already holds as imported rows.
4. Everything is written into `.partial-<name>/` beside the destination and renamed to
   `outlet-backup-<UTC time>/` only once the manifest is written and every file (and the
   directory) is fsynced: a backup directory that exists is complete, even after a power
   cut, and a failed run leaves no directory that looks like one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction

from . import manifest as manifest_module
from . import postgres
from .crypto import PartWriter, key_parse
from .manifest import Manifest, Part, SnapshotFacts

Progress = Callable[[str], None]
PIECE = 1024 * 1024
DATABASE_PART = "database.pgdump"
MEDIA_PART = "media.tar"


def _megabytes(count: int) -> str:
    return f"{count / 1e6:.1f} MB"


def backup_key() -> bytes | None:
    raw = getattr(settings, "BACKUP_ENCRYPTION_KEY", "")
    return key_parse(raw) if raw else None


def _durable(path: Path) -> None:
    """fsync a file or a directory: a crash or power cut after `backup` said it finished
    must not leave a complete-looking directory of cut-off parts."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def backup_create(*, output_dir: Path, progress: Progress = lambda _: None) -> Path:
    """Write a complete backup under `output_dir` and return its directory."""
    postgres.require_postgresql()
    key = backup_key()
    output_dir.mkdir(parents=True, exist_ok=True)
    stamp = "outlet-backup-" + datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%SZ")
    name, taken = stamp, 1
    while (output_dir / name).exists() or (output_dir / f".partial-{name}").exists():
        taken += 1  # another backup in the same second
        name = f"{stamp}-{taken}"
    partial = output_dir / f".partial-{name}"
    partial.mkdir(mode=0o700)
    suffix = ".enc" if key else ""
    try:
        facts, database = _dump_database(partial / (DATABASE_PART + suffix), key, progress)
        media = _archive_media(partial / (MEDIA_PART + suffix), key, progress)
        manifest = Manifest(
            created_at=facts.created_at,
            database=facts.database,
            migrations=facts.migrations,
            row_counts=facts.row_counts,
            stripe_event_high_water=facts.stripe_event_high_water,
            finished_at=manifest_module.utc_now(),
            encrypted=key is not None,
            encryption="chacha20poly1305-stream-v1 (hkdf-sha256)" if key else "",
            parts={"database": database, "media": media},
        )
        _durable(manifest.write(partial, key=key))
        _durable(partial)  # the parts and the manifest are on disk before the name says so
        final = output_dir / name
        partial.rename(final)
        _durable(output_dir)  # and so is the name
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    progress(f"backup complete: {final}")
    return final


def _dump_database(path: Path, key: bytes | None, progress: Progress) -> tuple[SnapshotFacts, Part]:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor.execute("SELECT pg_export_snapshot(), now()")
        snapshot, snapshot_time = cursor.fetchone()
        facts = SnapshotFacts(
            created_at=snapshot_time.astimezone(UTC)
            .isoformat(timespec="seconds")
            .replace("+00:00", "Z"),
            database=manifest_module.database_description(),
            migrations=manifest_module.migrations_applied(),
            row_counts=manifest_module.row_counts(),
            stripe_event_high_water=manifest_module.stripe_event_high_water(),
        )
        total_rows = sum(facts.row_counts.values())
        progress(f"database: snapshot {snapshot} taken, {total_rows} rows in the counted tables")
        process = postgres.start(
            "pg_dump",
            ["--format=custom", f"--snapshot={snapshot}", "--no-owner", "--no-privileges"],
            stdout=subprocess.PIPE,
        )
        assert process.stdout is not None
        try:
            with open(path, "wb") as target, PartWriter(target, key) as writer:
                last_report = time.monotonic()
                while piece := process.stdout.read(PIECE):
                    writer.write(piece)
                    if time.monotonic() - last_report > 2:
                        progress(f"database: {_megabytes(writer.plain_size)} dumped")
                        last_report = time.monotonic()
        except BaseException:
            process.kill()  # e.g. the disk filled: stop pg_dump too
            process.wait()
            raise
        postgres.finish(process, "pg_dump")
    path.chmod(0o600)
    _durable(path)
    part = Part(path.name, writer.size, writer.sha256, writer.plain_size)
    progress(f"database: {_megabytes(part.plain_bytes)} dumped, {_megabytes(part.bytes)} stored")
    return facts, part


def _archive_media(path: Path, key: bytes | None, progress: Progress) -> Part:
    root = Path(settings.MEDIA_ROOT)
    files = 0
    with (
        open(path, "wb") as target,
        PartWriter(target, key) as writer,
        tarfile.open(fileobj=writer, mode="w|") as tar,
    ):
        if root.is_dir():
            for item in sorted(root.rglob("*")):
                if item.is_file() and not item.is_symlink():
                    tar.add(item, arcname=str(item.relative_to(root)), recursive=False)
                    files += 1
    path.chmod(0o600)
    _durable(path)
    part = Part(path.name, writer.size, writer.sha256, writer.plain_size, files=files)
    progress(f"media: {files} files, {_megabytes(part.plain_bytes)} archived")
    return part
