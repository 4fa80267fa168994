"""Importing from the admin: the upload is stored privately, a worker runs it once."""

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from outlet.articles.models import Article
from outlet.importers.models import ArchiveImport
from outlet.importers.services import archive_import_run
from outlet.importers.tasks import archive_import_run_task

pytestmark = pytest.mark.django_db

EXPORT = Path(__file__).parent / "fixtures" / "wordpress-1.2.xml"


@pytest.fixture
def private_storage(settings) -> Path:
    """Where uploads go (storage "imports"): never under MEDIA_ROOT, which the site serves."""
    return Path(settings.IMPORTS_ROOT).resolve()


def upload() -> SimpleUploadedFile:
    return SimpleUploadedFile("export.xml", EXPORT.read_bytes(), content_type="text/xml")


def test_an_uploaded_export_is_queued_then_imported_and_its_report_shown(
    admin_client, private_storage, django_capture_on_commit_callbacks, monkeypatch, settings
):
    queued = []
    monkeypatch.setattr(archive_import_run_task, "delay", lambda pk: queued.append(pk))

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/importers/archiveimport/add/",
            {"source": "wordpress", "upload": upload()},
        )

    assert response.status_code == 302
    job = ArchiveImport.objects.get()
    assert queued == [job.pk] and job.status == ArchiveImport.Status.QUEUED
    assert Path(job.upload.path).is_relative_to(private_storage)
    assert not Path(job.upload.path).is_relative_to(Path(settings.MEDIA_ROOT).resolve())

    archive_import_run_task(job.pk)

    job.refresh_from_db()
    assert job.status == ArchiveImport.Status.DONE
    assert job.summary.startswith("archive_import: source=wordpress articles=6 pages=1")
    assert Article.objects.filter(slug="flood-night").exists()
    page = admin_client.get(f"/admin/importers/archiveimport/{job.pk}/change/").content.decode()
    assert "skipped post 15 (deleted__trashed): in the WordPress trash" in page


def test_running_an_import_twice_runs_it_once(private_storage):
    job = ArchiveImport(source="wordpress")
    job.upload.save("export.xml", upload(), save=False)
    job.save()

    archive_import_run(job=job)
    first_finish = ArchiveImport.objects.get().finished_at
    archive_import_run(job=job)

    assert ArchiveImport.objects.get().finished_at == first_finish
    assert Article.objects.count() == 6


def test_a_broken_upload_finishes_as_failed_with_the_reason(private_storage):
    job = ArchiveImport(source="wordpress")
    job.upload.save("export.xml", SimpleUploadedFile("export.xml", b"<rss><channel>"), save=False)
    job.save()

    archive_import_run(job=job)

    job.refresh_from_db()
    assert job.status == ArchiveImport.Status.FAILED
    assert "not a complete WordPress export" in job.report


def test_a_running_import_shows_how_far_it_has_read(admin_client, private_storage):
    from django.core.cache import cache

    from outlet.importers.services import archive_import_progress_key

    job = ArchiveImport(source="wordpress", status=ArchiveImport.Status.RUNNING)
    job.upload.save("export.xml", upload(), save=False)
    job.save()
    cache.set(archive_import_progress_key(job.pk), (4, 11))

    page = admin_client.get(f"/admin/importers/archiveimport/{job.pk}/change/").content.decode()

    assert "4 of 11 items read" in page


def test_progress_is_reported_while_the_items_are_written():
    from outlet.importers.services import archive_import

    seen = []
    archive_import(
        source="wordpress", path=EXPORT, progress=lambda done, total: seen.append((done, total))
    )

    assert seen[-1] == (10, 10)  # every item of the file, attachments and guest authors too


def test_staff_who_may_not_publish_cannot_import_an_archive(client):
    # An import publishes what WordPress published: only for those who may publish.
    from django.contrib.auth.models import Permission

    from tests.articles.conftest import _member

    contributor = _member("connie", "contributor")
    contributor.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="importers",
            codename__in=["add_archiveimport", "view_archiveimport"],
        )
    )
    client.force_login(contributor)

    response = client.post(
        "/admin/importers/archiveimport/add/", {"source": "wordpress", "upload": upload()}
    )

    assert response.status_code == 403
    assert not ArchiveImport.objects.exists()


@pytest.mark.parametrize(
    "content", [EXPORT.read_bytes(), b"<rss><channel>"], ids=["imported", "failed"]
)
def test_an_uploaded_export_is_deleted_once_its_import_has_run(private_storage, content):
    # An export holds drafts, authors' and commenters' addresses: kept only as long as needed.
    job = ArchiveImport(source="wordpress")
    job.upload.save("export.xml", SimpleUploadedFile("export.xml", content), save=False)
    job.save()
    stored = Path(job.upload.path)

    archive_import_run(job=job)

    assert not stored.exists()
    job.refresh_from_db()
    assert job.status in (ArchiveImport.Status.DONE, ArchiveImport.Status.FAILED) and job.report


def test_after_the_upload_the_editor_watches_the_import_on_its_own_page(
    admin_client, private_storage, monkeypatch
):
    monkeypatch.setattr(archive_import_run_task, "delay", lambda pk: None)

    response = admin_client.post(
        "/admin/importers/archiveimport/add/",
        {"source": "wordpress", "upload": upload(), "dry_run": "on"},
        follow=True,
    )

    job = ArchiveImport.objects.get()
    assert response.redirect_chain[-1][0] == f"/admin/importers/archiveimport/{job.pk}/change/"
    page = response.content.decode()
    assert "WordPress import #" in page
    assert '<meta http-equiv="refresh"' in page  # queued: the page follows the worker

    ArchiveImport.objects.filter(pk=job.pk).update(status=ArchiveImport.Status.DONE)
    page = admin_client.get(f"/admin/importers/archiveimport/{job.pk}/change/").content.decode()
    assert '<meta http-equiv="refresh"' not in page


def test_the_upload_form_names_the_sources_as_they_spell_themselves(admin_client):
    page = admin_client.get("/admin/importers/archiveimport/add/").content.decode()

    assert ">WordPress</option>" in page and "Wordpress" not in page
    assert "Save and add another" not in page and "Save and continue editing" not in page


def _running_since(minutes: int) -> ArchiveImport:
    from datetime import timedelta

    from django.utils import timezone

    job = ArchiveImport(source="wordpress")
    job.upload.save("export.xml", upload(), save=False)
    job.save()
    stale = timezone.now() - timedelta(minutes=minutes)
    ArchiveImport.objects.filter(pk=job.pk).update(
        status=ArchiveImport.Status.RUNNING, started_at=stale, heartbeat_at=stale
    )
    return ArchiveImport.objects.get(pk=job.pk)


def test_an_import_whose_worker_died_is_run_again_to_the_end(private_storage, monkeypatch):
    from outlet.importers.services import archive_imports_stalled_resume

    job = _running_since(minutes=30)
    stored = Path(job.upload.path)
    monkeypatch.setattr(archive_import_run_task, "delay", lambda pk: archive_import_run_task(pk))

    assert archive_imports_stalled_resume() == 1

    job.refresh_from_db()
    assert job.status == ArchiveImport.Status.DONE
    assert Article.objects.count() == 6
    assert not stored.exists()


def test_an_import_still_beating_is_left_to_its_worker(private_storage, monkeypatch):
    from outlet.importers.services import archive_imports_stalled_resume

    job = _running_since(minutes=0)
    monkeypatch.setattr(archive_import_run_task, "delay", lambda pk: archive_import_run_task(pk))

    assert archive_imports_stalled_resume() == 0
    assert ArchiveImport.objects.get(pk=job.pk).status == ArchiveImport.Status.RUNNING
    assert Article.objects.count() == 0


def test_a_redelivered_task_retakes_only_a_stalled_run(private_storage):
    fresh = _running_since(minutes=0)
    archive_import_run_task(fresh.pk)
    assert ArchiveImport.objects.get(pk=fresh.pk).status == ArchiveImport.Status.RUNNING

    stalled = _running_since(minutes=30)
    archive_import_run_task(stalled.pk)
    assert ArchiveImport.objects.get(pk=stalled.pk).status == ArchiveImport.Status.DONE
