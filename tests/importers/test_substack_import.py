"""Importing a Substack export end to end: what readers and editors find afterwards."""

import zipfile
from io import StringIO
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from PIL import Image

from outlet.articles.models import Article, Author
from outlet.importers.models import ArchiveImport, ImportedItem
from outlet.importers.services import archive_import
from outlet.importers.tasks import archive_import_run_task
from outlet.pages.models import Page
from tests.importers.importing import counts, run
from tests.importers.substack_export import EXPORT, zip_export

pytestmark = pytest.mark.django_db

IMAGE_NAME = "abc123_640x480.jpeg"


@pytest.fixture
def media_dir(tmp_path, settings) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    images = tmp_path / "substack-images"
    images.mkdir()
    Image.new("RGB", (640, 480), "steelblue").save(images / IMAGE_NAME, format="JPEG")
    return images


def test_published_posts_are_readable_at_their_new_address(client, media_dir):
    lines = run("substack", str(EXPORT), "--media-dir", str(media_dir))

    flood = Article.objects.get(slug="flood-night")
    assert flood.is_public
    assert flood.headline == "The night the river rose"
    assert flood.dek == "How a small town spent its longest night."
    assert [a.name for a in flood.authors.all()] == ["Riverside Dispatch"]
    assert '<blockquote class="pull-quote">' in flood.body
    assert "Main Street at dawn." in flood.body and 'alt="Main Street under water"' in flood.body
    assert "substackcdn" not in flood.body and "s3.amazonaws.com" not in flood.body
    assert "Subscribe" not in flood.body and "Share" not in flood.body
    assert "script" not in flood.body and "onclick" not in flood.body
    assert "https://twitter.com/riversidefire/status/1127412345678901248" in flood.body
    assert "<li><p>The gauge at the bridge read 11.2 feet.</p></li>" in flood.body
    page = client.get(flood.get_absolute_url())
    assert page.status_code == 200 and "Main Street at dawn." in page.content.decode()
    cafe = Article.objects.get(slug="cafe-owners")
    assert cafe.headline == "Café owners’ “Zürich” plan, über alles"
    assert '<a href="/p/flood-night"' in cafe.body  # its link to the old post answers here
    assert Page.objects.get(slug="about").title == "About the Dispatch"
    assert lines[-1] == (
        "archive_import: source=substack articles=6 pages=1 drafts=3 authors=1 sections=1 "
        "tags=0 images=1 redirects=12 skipped=1 failed=1"
    )
    assert any("105" in line and "missing" in line for line in lines)
    assert any("thread" in line for line in lines)


def test_old_substack_links_answer_301_to_the_new_address(client):
    run("substack", str(EXPORT))
    flood = Article.objects.get(slug="flood-night")

    for old in ("/p/flood-night", "/p/flood-night/", "/p/flood-night/comments"):
        response = client.get(old)
        assert response.status_code == 301, old
        assert response["Location"] == flood.get_absolute_url()
    assert client.get("/archive")["Location"] == "/archive/"
    assert client.get("/feed")["Location"] == "/feed/"
    about = client.get("/p/about")
    assert about.status_code == 301
    assert about["Location"] == Page.objects.get(slug="about").get_absolute_url()


def test_drafts_and_paid_posts_are_not_public_and_have_no_redirect(client):
    lines = run("substack", str(EXPORT))

    for slug in ("council-budget", "members-briefing", "founders-note"):
        article = Article.objects.get(slug=slug)
        assert article.status == Article.Status.DRAFT and not article.is_public
        assert client.get(f"/p/{slug}").status_code == 404
        assert client.get(article.get_absolute_url()).status_code == 404
    assert any("paying subscribers only" in line for line in lines)
    assert any("founding members only" in line for line in lines)


def test_a_second_run_changes_nothing(media_dir):
    run("substack", str(EXPORT), "--media-dir", str(media_dir))
    before = counts()
    bodies = dict(Article.objects.values_list("slug", "body"))

    lines = run("substack", str(EXPORT), "--media-dir", str(media_dir))

    assert counts() == before
    assert dict(Article.objects.values_list("slug", "body")) == bodies
    assert any(line.startswith("articles: unchanged 6") for line in lines)


def test_the_zip_substack_mails_imports_the_same_as_the_folder(tmp_path):
    archive = zip_export(tmp_path / "substack-export.zip")

    lines = run("substack", str(archive))

    assert lines[-1].startswith("archive_import: source=substack articles=6 pages=1 drafts=3")
    assert Article.objects.get(slug="flood-night").is_public


def test_dry_run_writes_nothing():
    lines = run("substack", str(EXPORT), "--dry-run")

    assert lines[0] == "DRY RUN: nothing was written."
    assert lines[-1].startswith("archive_import: source=substack articles=6 pages=1")
    assert counts() == dict.fromkeys(counts(), 0)


def test_a_zip_with_a_member_outside_the_archive_is_refused_and_nothing_written(tmp_path):
    archive = zip_export(tmp_path / "evil.zip", extra={"../evil.html": b"<p>x</p>"})

    out = StringIO()
    with pytest.raises(CommandError):
        call_command("archive_import", "substack", str(archive), stdout=out)

    assert "outside the archive" in out.getvalue()
    assert counts()["items"] == 0 and Article.objects.count() == 0


def test_a_file_that_is_not_a_substack_export_is_fatal_and_nothing_written(tmp_path):
    other = tmp_path / "export.zip"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("email_list.csv", "email,active_subscription\nreader@example.org,true\n")

    report = archive_import(source="substack", path=other)

    assert "not a Substack export" in report.fatal
    assert report.last_line().endswith("failed=1")
    assert Article.objects.count() == 0 and ImportedItem.objects.count() == 0


def test_author_option_names_who_wrote_the_posts():
    run("substack", str(EXPORT), "--author", "Jane Marsh")

    assert list(Author.objects.values_list("name", flat=True)) == ["Jane Marsh"]


def test_since_imports_only_the_posts_from_that_day_on():
    run("substack", str(EXPORT), "--since", "2019-06-10")

    assert not Article.objects.filter(slug="flood-night").exists()
    assert Article.objects.filter(slug="cafe-owners").exists()


def test_an_author_is_refused_for_a_source_whose_export_names_its_authors(tmp_path):
    report = archive_import(source="wordpress", path=EXPORT, author="Jane Marsh")

    assert "names its authors" in report.fatal


def test_the_admin_imports_an_uploaded_substack_zip_with_its_author(
    admin_client, tmp_path, django_capture_on_commit_callbacks, monkeypatch
):
    queued: list[int] = []
    monkeypatch.setattr(archive_import_run_task, "delay", lambda pk: queued.append(pk))
    archive = zip_export(tmp_path / "substack-export.zip")

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/importers/archiveimport/add/",
            {
                "source": "substack",
                "author": "Jane Marsh",
                "upload": SimpleUploadedFile("substack-export.zip", archive.read_bytes()),
            },
        )
    assert response.status_code == 302
    archive_import_run_task(queued[0])

    job = ArchiveImport.objects.get()
    assert job.status == ArchiveImport.Status.DONE
    assert job.summary.startswith("archive_import: source=substack articles=6 pages=1")
    assert list(Author.objects.values_list("name", flat=True)) == ["Jane Marsh"]


def test_media_from_site_fetches_each_original_image_once(tmp_path, settings, monkeypatch):
    from io import BytesIO

    from outlet.importers import media

    settings.MEDIA_ROOT = tmp_path / "media"
    picture = BytesIO()
    Image.new("RGB", (640, 480), "steelblue").save(picture, format="JPEG")
    fetched: list[str] = []

    def fetch(*, url: str, max_bytes: int) -> bytes:
        fetched.append(url)
        return picture.getvalue()

    monkeypatch.setattr(media, "media_fetch", fetch)

    run("substack", str(EXPORT), "--media-from-site")

    assert fetched == [f"https://substack-post-media.s3.amazonaws.com/public/images/{IMAGE_NAME}"]
    flood = Article.objects.get(slug="flood-night")
    assert "s3.amazonaws.com" not in flood.body and "<figcaption>Main Street" in flood.body


def test_the_admin_refuses_an_author_for_an_export_that_names_its_own(admin_client):
    response = admin_client.post(
        "/admin/importers/archiveimport/add/",
        {
            "source": "wordpress",
            "author": "Jane Marsh",
            "upload": SimpleUploadedFile("export.xml", b"<rss></rss>"),
        },
    )

    assert response.status_code == 200
    assert "Only a Substack export takes an author" in response.content.decode()
    assert ArchiveImport.objects.count() == 0


def test_authors_whose_names_make_no_latin_slug_stay_apart(tmp_path):
    """Two publications by two writers named in another script: each keeps its byline."""
    other = tmp_path / "other"
    (other / "posts").mkdir(parents=True)
    (other / "posts.csv").write_text(
        "post_id,post_date,is_published,type,audience,title\n"
        "201.harbour,2020-01-01T00:00:00.000Z,true,newsletter,everyone,The harbour\n"
    )
    (other / "posts" / "201.harbour.html").write_text("<p>Boats.</p>")

    run("substack", str(EXPORT), "--author", "李明")
    run("substack", str(other), "--author", "王芳")

    assert [a.name for a in Article.objects.get(slug="flood-night").authors.all()] == ["李明"]
    assert [a.name for a in Article.objects.get(slug="harbour").authors.all()] == ["王芳"]


@pytest.mark.parametrize(
    "markup", ["<!DOCTYPE html>", "<html><head><title>x</title></head></html>"]
)
def test_a_post_file_that_is_a_document_without_content_does_not_stop_the_import(tmp_path, markup):
    folder = tmp_path / "export"
    (folder / "posts").mkdir(parents=True)
    (folder / "posts.csv").write_text(
        "post_id,post_date,is_published,type,audience,title\n"
        "301.empty,2020-01-01T00:00:00.000Z,true,newsletter,everyone,Empty\n"
        "302.full,2020-01-02T00:00:00.000Z,true,newsletter,everyone,Full\n"
    )
    (folder / "posts" / "301.empty.html").write_text(markup)
    (folder / "posts" / "302.full.html").write_text("<p>Words.</p>")

    run("substack", str(folder))

    assert Article.objects.get(slug="full").body == "<p>Words.</p>"
