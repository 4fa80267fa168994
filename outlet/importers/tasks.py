"""Celery entry points for imports: thin, by id, safe to run twice."""

from __future__ import annotations

from celery import shared_task

from .models import ArchiveImport


@shared_task(
    name="importers.archive_import_run",
    queue="default",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def archive_import_run_task(import_id: int) -> None:
    """Run an uploaded import; one already claimed or finished is left alone."""
    from .services import archive_import_run

    job = ArchiveImport.objects.filter(pk=import_id).first()
    if job is not None:
        archive_import_run(job=job)


@shared_task(name="importers.archive_imports_stalled_resume", queue="default", ignore_result=True)
def archive_imports_stalled_resume_task() -> None:
    """Beat: run again the imports whose worker died."""
    from .services import archive_imports_stalled_resume

    archive_imports_stalled_resume()
