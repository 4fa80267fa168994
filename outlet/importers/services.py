"""`archive_import`: one door for every source, called by the command and the admin's worker."""

from __future__ import annotations

import datetime as dt
import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.core.cache import cache
from django.core.files.uploadedfile import UploadedFile
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from .ghost.importing import ghost_read
from .models import ArchiveImport
from .report import ImportReport
from .running import SourceRead, SourceRun, source_import
from .substack.importing import substack_read
from .wordpress.posts import wordpress_read

#: Every source this site imports, by the name the command and the admin offer: its
#: index pass (see running.py). Adding a source is one line here.
SOURCES: dict[str, SourceRead] = {
    "wordpress": wordpress_read,
    "ghost": ghost_read,
    "substack": substack_read,
}
#: Sources whose export names no author: the editor says who wrote it (--author).
AUTHOR_OPTION: dict[str, Callable[..., SourceRun]] = {"substack": substack_read}
#: Called with (items read, items in the file) while an import writes.
Progress = Callable[[int, int], None]


def archive_import_progress_key(import_id: int) -> str:
    return f"importers:archive-import:{import_id}:progress"


def archive_import(
    *,
    source: str,
    path: Path,
    media_dir: Path | None = None,
    media_from_site: bool = False,
    dry_run: bool = False,
    since: dt.datetime | None = None,
    progress: Progress | None = None,
    author: str = "",
) -> ImportReport:
    """Import an export of `source` at `path`; never raises for bad input, the report says."""
    read = SOURCES.get(source)
    if read is not None and author.strip():
        if source not in AUTHOR_OPTION:
            report = ImportReport(source=source, dry_run=dry_run)
            report.fatal = (
                f"A {source} export names its authors; an author is given only for "
                f"{', '.join(AUTHOR_OPTION)} exports."
            )
            return report
        read = functools.partial(AUTHOR_OPTION[source], author=author.strip())
    if read is not None:
        return source_import(
            name=source,
            read=read,
            path=path,
            media_dir=media_dir,
            media_from_site=media_from_site,
            dry_run=dry_run,
            since=since,
            progress=progress,
        )
    report = ImportReport(source=source, dry_run=dry_run)
    report.fatal = (
        f"“{source}” is not a source this site imports yet (known: {', '.join(SOURCES)})."
    )
    return report


def archive_import_queue(
    *,
    source: str,
    upload: UploadedFile,
    media_from_site: bool = False,
    dry_run: bool = False,
    user: Any = None,
    author: str = "",
) -> ArchiveImport:
    """Store an uploaded export and have a worker import it once this transaction commits."""
    from .tasks import archive_import_run_task

    job = ArchiveImport(
        source=source,
        media_from_site=media_from_site,
        dry_run=dry_run,
        author=author,
        created_by=user if user is not None and user.is_authenticated else None,
    )
    job.upload.save(upload.name or "export.xml", upload, save=False)
    job.save()
    transaction.on_commit(lambda: archive_import_run_task.delay(job.pk))
    return job


#: How often a running import says it is alive, and after how long without a word its
#: worker is taken for dead (killed, its machine restarted) and the run is taken again.
HEARTBEAT_SECONDS = 30
STALLED_AFTER = timedelta(minutes=5)


def archive_import_run(*, job: ArchiveImport) -> ArchiveImport:
    """Run a queued import once: the claim (queued → running) makes a second call a no-op
    while the first is alive. A run whose worker died (no heartbeat for STALLED_AFTER) is
    claimed again and run from the start: an import is idempotent, so what the dead run
    wrote is found and left as it is.

    The uploaded file is deleted once the run ends, however it ends: an export holds
    drafts and authors' and commenters' addresses, and nothing reads it again (a failed
    import is uploaded anew).
    """
    now = timezone.now()
    claimable = Q(status=ArchiveImport.Status.QUEUED) | _stalled(now)
    claimed = ArchiveImport.objects.filter(claimable, pk=job.pk).update(
        status=ArchiveImport.Status.RUNNING, started_at=now, heartbeat_at=now
    )
    if not claimed:
        return job
    try:
        with _heartbeat(job.pk):
            return _archive_import_run(job=job)
    finally:
        if job.upload.name:
            job.upload.storage.delete(job.upload.name)


def _stalled(now: dt.datetime) -> Q:
    """Running, and silent for STALLED_AFTER (runs from before heartbeats: since their start)."""
    silent_since = now - STALLED_AFTER
    return Q(status=ArchiveImport.Status.RUNNING) & (
        Q(heartbeat_at__lt=silent_since) | Q(heartbeat_at__isnull=True, started_at__lt=silent_since)
    )


@contextmanager
def _heartbeat(job_id: int) -> Iterator[None]:
    """Write the run's heartbeat from a thread of its own while the import works (an item
    may take minutes: images fetched from a slow old site)."""
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(HEARTBEAT_SECONDS):
                ArchiveImport.objects.filter(pk=job_id, status=ArchiveImport.Status.RUNNING).update(
                    heartbeat_at=timezone.now()
                )
        finally:
            connection.close()

    thread = threading.Thread(target=beat, name=f"import-{job_id}-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def archive_imports_stalled_resume() -> int:
    """Beat: queue again every import whose worker stopped beating (its task is not
    always delivered again: the broker may have acknowledged it). The task claims it."""
    from .tasks import archive_import_run_task

    stalled = list(
        ArchiveImport.objects.filter(_stalled(timezone.now())).values_list("pk", flat=True)
    )
    for pk in stalled:
        archive_import_run_task.delay(pk)
    return len(stalled)


def _archive_import_run(*, job: ArchiveImport) -> ArchiveImport:
    try:
        key = archive_import_progress_key(job.pk)
        report = archive_import(
            source=job.source,
            path=Path(job.upload.path),
            media_from_site=job.media_from_site,
            dry_run=job.dry_run,
            progress=lambda done, total: cache.set(key, (done, total), 86400),
            author=job.author,
        )
    except Exception as exc:
        ArchiveImport.objects.filter(pk=job.pk).update(
            status=ArchiveImport.Status.FAILED,
            report=f"The import stopped: {type(exc).__name__}. Nothing was written.",
            finished_at=timezone.now(),
        )
        raise
    ArchiveImport.objects.filter(pk=job.pk).update(
        status=ArchiveImport.Status.FAILED if report.fatal else ArchiveImport.Status.DONE,
        summary=report.last_line()[:400],
        report="\n".join(report.lines()),
        finished_at=timezone.now(),
    )
    job.refresh_from_db()
    return job
