"""Importing a Ghost export end to end: what readers and editors find afterwards."""

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from PIL import Image

from outlet.articles.models import Article, Section, Tag
from outlet.importers.ghost.importing import images_relative_path
from outlet.importers.models import ArchiveImport
from outlet.importers.tasks import archive_import_run_task
from outlet.pages.models import Page
from outlet.redirects.models import Redirect
from tests.importers.importing import counts, run

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures"
V5 = FIXTURES / "ghost-5.json"
V4 = FIXTURES / "ghost-4.json"


@pytest.fixture
def media_dir(tmp_path, settings) -> Path:
    """Ghost's content/images folder with the v5 export's images in it."""
    settings.MEDIA_ROOT = tmp_path / "media"
    images = tmp_path / "content" / "images"
    (images / "2024" / "03").mkdir(parents=True)
    (images / "2024" / "05").mkdir(parents=True)
    Image.new("RGB", (640, 480), "steelblue").save(images / "2024" / "03" / "hall.jpg")
    for name in ("2024/03/council.jpg", "2024/05/river.jpg", "2024/05/a.jpg", "2024/05/b.jpg"):
        Image.new("RGB", (800, 600), "darkred").save(images / name)
    return images


def test_published_ghost_posts_are_readable_here_with_their_details(client, media_dir):
    lines = run("ghost", str(V5), "--media-dir", str(media_dir))

    council = Article.objects.get(slug="council-approves-budget")
    assert council.is_public
    assert council.headline == "Council approves the budget"
    assert council.dek == "Seven votes to two, after a long night."
    assert council.section.name == "City Hall"
    assert [t.name for t in council.tags.all()] == ["Budget"]
    assert [a.name for a in council.authors.order_by("bylines__position")] == [
        "Jane Doe",
        "Sam Roe",
    ]
    assert (council.seo_title, council.seo_description) == (
        "Council approves the 2024 budget",
        "The vote was seven to two.",
    )
    assert council.featured is True
    assert council.canonical_url == "https://example.org/original-council-story"
    assert not Article.objects.get(slug="the-river-in-pictures").featured
    assert council.featured_image.name and council.image_width == 640
    assert (council.image_alt, council.image_caption) == ("The city hall at night", "Photo by Jane")
    assert "/content/images/2024/03/council.jpg" not in council.body  # stored here instead
    assert '<blockquote class="pull-quote"><p>We will not back down.</p></blockquote>' in (
        council.body
    )
    assert "script" not in council.body and "onclick" not in council.body
    page = client.get("/council-approves-budget/")
    assert page.status_code == 200 and "The vote, 7 to 2." in page.content.decode()
    assert Page.objects.get(slug="about").status == Page.Status.PUBLISHED
    assert lines[-1] == (
        "archive_import: source=ghost articles=6 pages=1 drafts=3 authors=2 sections=2 "
        "tags=2 images=5 redirects=15 skipped=0 failed=0"
    )


def test_members_only_email_only_and_draft_posts_are_never_public(client):
    lines = run("ghost", str(V5))

    for slug in ("inside-the-mayors-office", "weekly-letter-12", "half-written-investigation"):
        article = Article.objects.get(slug=slug)
        assert article.status == Article.Status.DRAFT and not article.is_public
        assert client.get(f"/{slug}/").status_code == 404
    preview = "/p/0b7f3a52-1c1e-4d1f-9a39-1a2b3c4d5e02/"
    assert not Redirect.objects.filter(old_path=preview).exists()
    assert client.get(preview).status_code == 404
    report = "\n".join(lines)
    assert "kept as a draft: for members only on Ghost (visibility “paid”)" in report
    assert "kept as a draft: sent by email only on Ghost" in report


def test_scheduled_post_stays_scheduled():
    run("ghost", str(V5))

    article = Article.objects.get(slug="election-night-live")
    assert article.status == Article.Status.SCHEDULED and not article.is_public


def test_old_ghost_links_answer_301_at_their_new_home(client):
    run("ghost", str(V5))

    expected = {
        "/p/0b7f3a52-1c1e-4d1f-9a39-1a2b3c4d5e01/": "/council-approves-budget/",
        "/council-approves-budget/amp/": "/council-approves-budget/",
        "/tag/city-hall/": "/section/city-hall/",
        "/tag/city-hall/rss/": "/section/city-hall/feed/",
        "/author/jane/rss/": "/author/jane/feed/",
        "/rss/": "/feed/",
    }
    for old, new in expected.items():
        response = client.get(old)
        assert (response.status_code, response["Location"]) == (301, new), old
    # Ghost's own /tag/budget/ is this site's tag page: no redirect needed.
    assert client.get("/tag/budget/").status_code == 200


def test_internal_tags_are_not_imported():
    run("ghost", str(V5))

    assert not Tag.objects.filter(name="#newsletter").exists()
    assert not Section.objects.filter(name="#newsletter").exists()


def test_second_run_changes_nothing(media_dir):
    run("ghost", str(V5), "--media-dir", str(media_dir))
    before = counts()
    bodies = dict(Article.objects.values_list("slug", "body"))

    lines = run("ghost", str(V5), "--media-dir", str(media_dir))

    assert counts() == before
    assert dict(Article.objects.values_list("slug", "body")) == bodies
    assert "articles: unchanged 6" in lines
    assert "pages: unchanged 1" in lines
    assert lines[-1].startswith("archive_import: source=ghost articles=6 pages=1 drafts=3")


def test_dry_run_writes_nothing_and_reports_the_same(media_dir):
    lines = run("ghost", str(V5), "--media-dir", str(media_dir), "--dry-run")

    assert lines[0] == "DRY RUN: nothing was written."
    assert all(value == 0 for value in counts().values())
    assert lines[-1].startswith("archive_import: source=ghost articles=6 pages=1 drafts=3")


def test_a_truncated_export_is_fatal_and_writes_nothing(tmp_path):
    cut = tmp_path / "cut.json"
    data = V5.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.8)])
    out = StringIO()

    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("archive_import", "ghost", str(cut), stdout=out)

    assert "not a complete Ghost export" in out.getvalue()
    assert out.getvalue().splitlines()[-1].endswith("failed=1")
    assert all(value == 0 for value in counts().values())


def test_a_wordpress_file_given_as_ghost_is_refused(tmp_path):
    out = StringIO()

    with pytest.raises(CommandError):
        call_command("archive_import", "ghost", str(FIXTURES / "wordpress-1.2.xml"), stdout=out)

    assert "not a complete Ghost export" in out.getvalue()
    assert Article.objects.count() == 0


def test_a_ghost_4_mobiledoc_export_imports(client):
    lines = run("ghost", str(V4))

    market = Article.objects.get(slug="saturday-at-the-market")
    assert market.is_public
    assert '<blockquote class="pull-quote"><p>Nobody can afford cherries.</p></blockquote>' in (
        market.body
    )
    assert [a.name for a in market.authors.order_by("bylines__position")] == [
        "Ada Market",
        "Ben Stall",
    ]
    assert not Article.objects.get(slug="market-accounts").is_public
    assert Page.objects.get(slug="masthead").status == Page.Status.PUBLISHED
    assert client.get("/p/a1b2c3d4-0000-4000-8000-000000000001/").status_code == 301
    report = "\n".join(lines)
    assert "the Ghost card “nft” was kept as sanitised HTML; check how it reads" in report
    assert "onclick" not in market.body and "track()" not in market.body
    assert lines[-1].startswith("archive_import: source=ghost articles=5 pages=1 drafts=2")


def test_since_leaves_older_posts_out():
    run("ghost", str(V5), "--since", "2024-04-02")

    assert set(Article.objects.values_list("slug", flat=True)) == {
        "election-night-live",
        "half-written-investigation",
        "weekly-letter-12",
        "the-river-in-pictures",
    }


def test_images_are_found_under_content_images_as_their_original_upload():
    assert images_relative_path("/content/images/2024/03/a.jpg") == "2024/03/a.jpg"
    assert (
        images_relative_path("https://old.example/content/images/size/w600/2024/03/a.jpg")
        == "2024/03/a.jpg"
    )
    assert images_relative_path("/content/images/size/w1000/format/webp/2024/03/a.png") == (
        "2024/03/a.png"
    )
    assert images_relative_path("https://images.unsplash.com/photo-1") == ""


def test_a_ghost_export_uploaded_in_the_admin_is_imported_with_its_report(
    admin_client, django_capture_on_commit_callbacks, monkeypatch
):
    queued = []
    monkeypatch.setattr(archive_import_run_task, "delay", lambda pk: queued.append(pk))
    upload = SimpleUploadedFile("ghost.json", V5.read_bytes(), content_type="application/json")

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/importers/archiveimport/add/", {"source": "ghost", "upload": upload}
        )
    assert response.status_code == 302
    archive_import_run_task(queued[0])

    job = ArchiveImport.objects.get()
    assert job.status == ArchiveImport.Status.DONE
    assert job.summary.startswith("archive_import: source=ghost articles=6 pages=1 drafts=3")
    page = admin_client.get(f"/admin/importers/archiveimport/{job.pk}/change/").content.decode()
    assert "for members only on Ghost" in page


def test_a_row_that_cannot_be_converted_is_skipped_with_its_reason_and_the_rest_imports(
    tmp_path,
):
    export = json.loads(V5.read_text())
    export["db"][0]["data"]["posts"][0]["title"] = ["a", "list"]
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(export))

    lines = run("ghost", str(broken))

    assert not Article.objects.filter(slug="council-approves-budget").exists()
    assert Article.objects.filter(slug="the-river-in-pictures").exists()
    assert (
        "skipped article 65f000000000000000000001 (council-approves-budget): its row could not "
        "be converted (its “title” is list, where Ghost writes text)"
    ) in lines
    assert lines[-1].startswith("archive_import: source=ghost articles=5 pages=1")


def test_a_document_nested_too_deep_to_render_is_skipped_and_the_rest_imports(tmp_path):
    """The lexical and mobiledoc documents are JSON inside a string: one nested past what
    Python's recursion renders fails its own post, not the whole import."""
    export = json.loads(V5.read_text())
    node = {"type": "paragraph", "children": [{"type": "text", "text": "deep"}]}
    for _ in range(2000):
        node = {"type": "quote", "children": [node]}
    first = export["db"][0]["data"]["posts"][0]
    first["html"], first["mobiledoc"] = None, None
    first["lexical"] = json.dumps({"root": {"children": [node]}})
    deep = tmp_path / "deep.json"
    deep.write_text(json.dumps(export))

    lines = run("ghost", str(deep))

    assert not Article.objects.filter(slug="council-approves-budget").exists()
    assert Article.objects.filter(slug="the-river-in-pictures").exists()
    assert any(
        line.startswith("skipped article 65f000000000000000000001") and "nested too deep" in line
        for line in lines
    )


def test_posts_without_an_id_are_skipped_not_written_over_each_other(tmp_path):
    """Every imported item is remembered by its id: two id-less rows would be one item."""
    export = json.loads(V5.read_text())
    posts = export["db"][0]["data"]["posts"]
    del posts[0]["id"]
    posts[1]["id"] = ""
    broken = tmp_path / "no-ids.json"
    broken.write_text(json.dumps(export))

    lines = run("ghost", str(broken))

    assert not Article.objects.filter(slug__in=[posts[0]["slug"], posts[1]["slug"]]).exists()
    assert sum("its row could not be converted (it has no id)" in line for line in lines) == 2


@pytest.mark.parametrize(
    "markup", ["<!DOCTYPE html>", "<html><head><title>x</title></head></html>"]
)
def test_a_body_that_is_a_document_without_content_does_not_stop_the_import(tmp_path, markup):
    """lxml's fragment parser raises on a document with no body; the rest must import."""
    export = json.loads(V5.read_text())
    export["db"][0]["data"]["posts"][0]["html"] = markup
    odd = tmp_path / "odd.json"
    odd.write_text(json.dumps(export))

    lines = run("ghost", str(odd))

    assert Article.objects.filter(slug="the-river-in-pictures").exists()
    assert lines[-1].startswith("archive_import: source=ghost articles=6 pages=1")
