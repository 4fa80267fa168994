"""Importing a WordPress export end to end: what readers and editors find afterwards."""

from pathlib import Path

import pytest
from django.core.management import CommandError
from PIL import Image

from outlet.articles.models import Article
from outlet.importers.services import archive_import
from outlet.pages.models import Page
from outlet.redirects.models import Redirect
from tests.factories import ArticleFactory
from tests.importers.importing import counts, run

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures"
EXPORT = FIXTURES / "wordpress-1.2.xml"


@pytest.fixture
def media_dir(tmp_path, settings) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    uploads = tmp_path / "uploads"
    (uploads / "2019" / "05").mkdir(parents=True)
    Image.new("RGB", (640, 480), "steelblue").save(uploads / "2019" / "05" / "flood.jpg")
    return uploads


def test_published_posts_are_readable_at_their_new_address(client, media_dir):
    lines = run("wordpress", str(EXPORT), "--media-dir", str(media_dir))

    flood = Article.objects.get(slug="flood-night")
    assert flood.is_public
    assert flood.headline == "The night the river rose"
    assert flood.dek == "How a small town spent its longest night."
    assert flood.body.startswith("<p>The water came at midnight.<br>\nNobody slept.</p>")
    assert "<figcaption>Main Street at dawn.</figcaption>" in flood.body
    assert "script" not in flood.body and "onclick" not in flood.body
    assert flood.section.name == "Valley & Hills"
    assert [t.name for t in flood.tags.all()] == ["Floods"]
    assert [a.name for a in flood.authors.order_by("bylines__position")] == [
        "Jane Marsh",
        "Ada Lind",
    ]
    assert (flood.seo_title, flood.seo_description) == (
        "Flood night in Riverside",
        "The river rose eleven feet overnight.",
    )
    assert flood.featured_image.name.endswith(".jpg") and flood.image_width == 640
    assert flood.image_alt == "Main Street under water"
    assert flood.image_caption == "Main Street at dawn."
    page = client.get("/flood-night/")
    assert page.status_code == 200 and "Main Street at dawn." in page.content.decode()
    assert lines[-1] == (
        "archive_import: source=wordpress articles=6 pages=1 drafts=3 authors=3 sections=2 "
        "tags=2 images=1 redirects=33 skipped=1 failed=0"
    )


def test_block_post_keeps_its_pull_quote_caption_embed_and_table():
    archive_import(source="wordpress", path=EXPORT)

    body = Article.objects.get(slug="river-report").body
    assert (
        '<blockquote class="pull-quote"><p>We had four hours of warning.</p>'
        "<p>— Fire chief Ola Brandt</p></blockquote>"
    ) in body
    assert "<figcaption>The gauge at the bridge.</figcaption>" in body
    assert 'href="https://www.youtube.com/watch?v=abc123"' in body
    assert "<td>4.1 m</td>" in body and "<hr>" in body
    assert "onerror" not in body and "alert" not in body


def test_drafts_private_and_password_posts_are_never_public_and_trash_is_skipped():
    report = archive_import(source="wordpress", path=EXPORT)

    draft = Article.objects.get(headline="Unfinished: the bridge inquiry")
    assert draft.slug == "unfinished-the-bridge-inquiry-13"
    assert (
        not Article.objects.published()
        .filter(slug__in=[draft.slug, "salaries", "documents"])
        .exists()
    )
    assert Article.objects.get(slug="ten-years").status == Article.Status.SCHEDULED
    assert not Article.objects.filter(headline="Deleted post").exists()
    assert "skipped post 15 (deleted__trashed): in the WordPress trash" in report.problems
    assert any("kept as a draft: private on WordPress" in n for n in report.notes)
    assert any("kept as a draft: password-protected on WordPress" in n for n in report.notes)
    assert not Redirect.objects.filter(
        old_path__in=["/2020/02/salaries/", "/?p=14", "/?p=16"]
    ).exists()


def test_pages_become_static_pages():
    archive_import(source="wordpress", path=EXPORT)

    about = Page.objects.get(slug="about")
    assert about.status == Page.Status.PUBLISHED
    assert about.body == "<p>We are a reader-funded newsroom.</p>\n<p>Write to us any time.</p>"
    assert about.seo_description == "Who we are."


def test_old_links_answer_301_at_the_new_address_and_count_hits(client):
    archive_import(source="wordpress", path=EXPORT)

    expectations = {
        "/2019/05/12/flood-night/": "/flood-night/",
        "/2019/05/12/flood-night": "/flood-night/",
        "/2019/05/river-report/": "/river-report/",
        "/?p=10": "/flood-night/",
        "/?page_id=12": "/page/about/",
        "/about/": "/page/about/",
        "/category/news/valley/": "/section/valley/",
        "/category/news/valley/feed/": "/section/valley/feed/",
        "/tag/floods/feed/": "/tag/floods/",
        "/?feed=rss2": "/feed/",
    }
    for old, new in expectations.items():
        response = client.get(old)
        assert (old, response.status_code, response.headers.get("Location")) == (old, 301, new)
    assert Redirect.objects.get(old_path="/2019/05/12/flood-night/").hits == 2
    assert client.get("/author/guest-ada/").status_code == 200  # same address: no redirect


def test_a_second_run_changes_nothing(media_dir):
    first = run("wordpress", str(EXPORT), "--media-dir", str(media_dir))
    before = counts()
    stamps = dict(Article.objects.values_list("slug", "updated_at"))

    second = run("wordpress", str(EXPORT), "--media-dir", str(media_dir))

    assert counts() == before
    assert dict(Article.objects.values_list("slug", "updated_at")) == stamps
    assert second[-1] == first[-1]
    assert "articles: unchanged 6, skipped 1" in second
    assert "redirects: unchanged 33" in second


def test_dry_run_writes_nothing_and_reports_what_would_happen(media_dir):
    lines = run("wordpress", str(EXPORT), "--media-dir", str(media_dir), "--dry-run")

    assert lines[0] == "DRY RUN: nothing was written."
    assert lines[-1].startswith("archive_import: source=wordpress articles=6 pages=1")
    assert counts() == dict.fromkeys(counts(), 0)
    assert (
        not list((media_dir.parent / "media").rglob("*.jpg"))
        if (media_dir.parent / "media").exists()
        else True
    )


def test_a_truncated_export_is_refused_whole_and_writes_nothing(tmp_path):
    text = EXPORT.read_text()
    truncated = tmp_path / "cut.xml"
    truncated.write_text(text[: int(len(text) * 0.7)])

    with pytest.raises(CommandError, match="nothing was imported"):
        run("wordpress", str(truncated))
    report = archive_import(source="wordpress", path=truncated)

    assert report.fatal.startswith("The file is not a complete WordPress export (XML error at line")
    assert report.last_line().endswith(
        "articles=0 pages=0 drafts=0 authors=0 sections=0 tags=0 images=0 redirects=0 "
        "skipped=0 failed=1"
    )
    assert counts() == dict.fromkeys(counts(), 0)


def test_a_file_that_is_no_export_says_so(tmp_path):
    other = tmp_path / "notes.xml"
    other.write_text("<notes><note>hi</note></notes>")

    report = archive_import(source="wordpress", path=other)

    assert report.fatal == "This is not a WordPress export: it has no RSS channel."


def test_older_export_namespaces_are_read_the_same_way(client):
    archive_import(source="wordpress", path=FIXTURES / "wordpress-1.0.xml")

    post = Article.objects.get(slug="first-light")
    assert post.body == "<p>An early post.</p>\n<p>With two paragraphs.</p>"
    assert post.dek == "Short."
    assert client.get("/news/first-light/").headers["Location"] == "/first-light/"


def test_a_taken_slug_gets_the_post_id_and_the_existing_article_is_untouched():
    existing = ArticleFactory(slug="river-report", headline="Ours")

    report = archive_import(source="wordpress", path=EXPORT)

    existing.refresh_from_db()
    assert existing.headline == "Ours"
    assert (
        Article.objects.get(slug="river-report-11").headline == "River report: what the data shows"
    )
    assert any("was taken; it is /river-report-11/ here" in n for n in report.notes)


def test_a_media_path_leading_outside_the_media_dir_is_refused(tmp_path, media_dir):
    hostile = tmp_path / "hostile.xml"
    hostile.write_text(
        EXPORT.read_text().replace(
            "2019/05/flood.jpg]]></wp:meta_value>", "../secret.jpg]]></wp:meta_value>"
        )
    )
    Image.new("RGB", (640, 480)).save(tmp_path / "secret.jpg")

    report = archive_import(source="wordpress", path=hostile, media_dir=media_dir)

    assert "failed image 30 ../secret.jpg: its path leads outside --media-dir" in report.problems
    assert not Article.objects.get(slug="flood-night").featured_image


def test_body_images_are_stored_with_renditions_and_their_addresses_rewritten(media_dir):
    from django.core.files.storage import default_storage

    from outlet.articles.models import ArticleImage

    archive_import(source="wordpress", path=EXPORT, media_dir=media_dir)

    image = ArticleImage.objects.get()
    assert image.alt_text == "Main Street under water" and image.width == 640
    assert default_storage.exists(f"renditions/{image.image.name.rsplit('.', 1)[0]}.w480.jpg")
    for slug in ("flood-night", "river-report"):
        body = Article.objects.get(slug=slug).body
        assert "old.example.org/wp-content" not in body
        assert f'<img src="{image.image.url}" alt="Main Street under water">' in body
    assert Article.objects.get(slug="flood-night").featured_image.name == image.image.name


def test_body_images_missing_from_the_media_dir_keep_their_old_address(tmp_path):
    report = archive_import(source="wordpress", path=EXPORT, media_dir=tmp_path)

    assert "https://old.example.org/wp-content/uploads/2019/05/flood.jpg" in (
        Article.objects.get(slug="river-report").body
    )
    assert "skipped image 30 2019/05/flood.jpg: missing from --media-dir" in report.problems


def test_a_published_post_with_an_image_without_alt_text_is_kept_as_a_draft(tmp_path):
    export = tmp_path / "no-alt.xml"
    export.write_text(EXPORT.read_text().replace('alt="x"', 'alt=""'))

    report = archive_import(source="wordpress", path=export)

    post = Article.objects.get(slug="river-report")
    assert post.status == Article.Status.DRAFT
    assert any(
        n.startswith("post 11 (river-report): kept as a draft: 1 image(s) in the body have no alt")
        for n in report.notes
    )


def test_an_author_without_email_or_display_name_is_named_from_first_and_last_name():
    archive_import(source="wordpress", path=EXPORT)

    assert [a.name for a in Article.objects.get(slug="river-report").authors.all()] == ["Bob Reed"]


def test_since_imports_only_items_published_from_that_date(media_dir):
    run("wordpress", str(EXPORT), "--since", "2020-01-01")

    assert set(Article.objects.values_list("slug", flat=True)) == {
        "unfinished-the-bridge-inquiry-13",
        "salaries",
        "documents",
        "ten-years",
    }


def test_attachment_pages_and_id_links_of_categories_and_authors_redirect(client):
    archive_import(source="wordpress", path=EXPORT)

    expectations = {
        "/2019/05/12/flood-night/flood/": "/flood-night/",  # the image's page → its post
        "/?attachment_id=30": "/flood-night/",
        "/?cat=3": "/section/valley/",
        "/?author=1": "/author/jane/",
    }
    for old, new in expectations.items():
        response = client.get(old)
        assert (old, response.status_code, response.headers.get("Location")) == (old, 301, new)


def test_old_date_archives_lead_to_the_month_in_the_archive(client):
    archive_import(source="wordpress", path=EXPORT)

    assert client.get("/2019/05/").headers["Location"] == "/archive/2019/5/"
    assert client.get("/2019/05/12/").headers["Location"] == "/archive/2019/5/"
    assert client.get("/2019/").headers["Location"] == "/archive/"


def test_names_wordpress_stored_html_escaped_read_as_plain_text(tmp_path):
    export = tmp_path / "escaped.xml"
    export.write_text(
        EXPORT.read_text()
        .replace(
            "<![CDATA[Valley & Hills]]></wp:cat_name>",
            "<![CDATA[Valley &amp; Hills]]></wp:cat_name>",
        )
        .replace(
            "<![CDATA[The night the river rose]]>", "<![CDATA[Rain &amp; the river&#8217;s night]]>"
        )
    )

    archive_import(source="wordpress", path=export)

    flood = Article.objects.get(slug="flood-night")
    assert flood.headline == "Rain & the river’s night"
    assert flood.section.name == "Valley & Hills"


def test_a_post_whose_old_address_is_too_long_to_redirect_still_comes_across(tmp_path):
    long_link = "https://old.example.org/2019/05/12/" + "very-" * 120 + "long/"
    export = tmp_path / "long.xml"
    export.write_text(
        EXPORT.read_text().replace(
            "https://old.example.org/2019/05/12/flood-night/</link>", f"{long_link}</link>"
        )
    )

    report = archive_import(source="wordpress", path=export)

    assert Article.objects.get(slug="flood-night").is_public
    assert any(p.startswith("failed /2019/05/12/very-") for p in report.problems)


def test_a_page_made_private_in_wordpress_leaves_the_cached_pages_when_imported_again(
    client, tmp_path, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        run("wordpress", str(EXPORT))
    assert client.get("/page/about/").status_code == 200  # now in the page cache
    text = EXPORT.read_text()
    page_at = text.index("<wp:post_id>12</wp:post_id>")
    private = tmp_path / "private.xml"
    private.write_text(
        text[:page_at] + text[page_at:].replace("<![CDATA[publish]]>", "<![CDATA[private]]>", 1)
    )

    with django_capture_on_commit_callbacks(execute=True):
        run("wordpress", str(private))

    assert Page.objects.get(slug="about").status == Page.Status.DRAFT
    assert client.get("/page/about/").status_code == 404


def test_an_imported_image_is_stored_under_its_content_name_whatever_the_old_one(
    tmp_path, settings
):
    # A picture that is also a web page keeps no ".html" name to be served as one.
    settings.MEDIA_ROOT = tmp_path / "media"
    uploads = tmp_path / "uploads"
    (uploads / "2019" / "05").mkdir(parents=True)
    Image.new("RGB", (640, 480), "steelblue").save(uploads / "2019" / "05" / "flood.html", "JPEG")
    export = tmp_path / "export.xml"
    export.write_text(
        EXPORT.read_text().replace(
            "<![CDATA[2019/05/flood.jpg]]>", "<![CDATA[2019/05/flood.html]]>"
        )
    )

    run("wordpress", str(export), "--media-dir", str(uploads))

    flood = Article.objects.get(slug="flood-night")
    assert flood.featured_image.name.startswith("body/")
    assert flood.featured_image.name.endswith(".jpg")
    assert not list(settings.MEDIA_ROOT.rglob("*.html"))
