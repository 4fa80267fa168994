"""The shared writer: any source's SourcePosts become articles, pages and redirects, once."""

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from outlet.articles.models import Article, Author, Section, Tag
from outlet.importers.models import ImportedItem
from outlet.importers.report import ImportReport
from outlet.importers.running import SourceRun, SourceUnreadable, source_import
from outlet.importers.source import SourceImage, SourcePerson, SourcePost, SourceTerm
from outlet.pages.models import Page
from outlet.redirects.models import Redirect

pytestmark = pytest.mark.django_db

WHEN = dt.datetime(2024, 3, 5, 9, 0, tzinfo=dt.UTC)
JANE = SourcePerson(
    source_id="u1",
    name="Jane Marsh",
    slug="jane",
    old_paths=("/writers/jane/",),
    old_feed_paths=("/writers/jane/rss/",),
)
NEWS = SourceTerm(source_id="c1", name="News", slug="news", old_paths=("/tag-news/",))


def article(source_id: str = "p1", **changes) -> SourcePost:
    post = SourcePost(
        source_id=source_id,
        kind="article",
        title=f"Story {source_id}",
        slug=f"story-{source_id}",
        body="<p>The water came at midnight.</p>",
        status=Article.Status.PUBLISHED,
        publish_at=WHEN,
        excerpt="A long night.",
        authors=[JANE],
        section=NEWS,
        tags=[SourceTerm(source_id="t1", name="Floods", slug="floods")],
        old_paths=[f"/old/{source_id}/"],
    )
    return replace(post, **changes)


def page(source_id: str = "g1", **changes) -> SourcePost:
    post = SourcePost(
        source_id=source_id,
        kind="page",
        title="About us",
        slug="about-us",
        body="<p>We report.</p>",
        status=Article.Status.PUBLISHED,
        old_paths=["/about/"],
    )
    return replace(post, **changes)


def run_import(posts, *, dry_run=False, media_dir=None, **run_fields):
    def read(path: Path) -> SourceRun:
        return SourceRun(
            source="test:old.example", posts=lambda: list(posts), total=len(posts), **run_fields
        )

    return source_import(
        name="test", read=read, path=Path("unused"), dry_run=dry_run, media_dir=media_dir
    )


def test_posts_become_articles_and_pages_with_their_people_and_terms(client):
    report = run_import([article(), page()])

    story = Article.objects.get(slug="story-p1")
    assert story.is_public and story.headline == "Story p1" and story.dek == "A long night."
    assert story.section.name == "News"
    assert [a.name for a in story.authors.all()] == ["Jane Marsh"]
    assert [t.name for t in story.tags.all()] == ["Floods"]
    assert Page.objects.get(slug="about-us").status == Page.Status.PUBLISHED
    assert client.get("/old/p1/", follow=False)["Location"] == story.get_absolute_url()
    assert client.get("/about/")["Location"] == Page.objects.get().get_absolute_url()
    author_url = Author.objects.get().get_absolute_url()
    assert client.get("/writers/jane/rss/")["Location"] == f"{author_url}feed/"
    assert report.last_line().startswith(
        "archive_import: source=test articles=1 pages=1 drafts=0 authors=1 sections=1 tags=1"
    )


def test_a_second_run_changes_nothing():
    posts = [article("p1"), article("p2"), page()]
    run_import(posts)
    before = (Article.objects.count(), Redirect.objects.count(), ImportedItem.objects.count())

    report = run_import(posts)

    assert report.counts["articles"] == {"unchanged": 2}
    assert report.counts["pages"] == {"unchanged": 1}
    assert report.counts["authors"] == {"unchanged": 1}
    assert (Article.objects.count(), Redirect.objects.count(), ImportedItem.objects.count()) == (
        before
    )


def test_an_updated_title_updates_the_same_article():
    run_import([article()])

    report = run_import([article(title="Story, revised")])

    assert report.counts["articles"] == {"updated": 1}
    assert Article.objects.get().headline == "Story, revised"


def test_a_change_to_featured_or_canonical_counts_as_a_change():
    run_import([article()])

    report = run_import([article(featured=True, canonical_url="https://elsewhere.example/a")])

    assert report.counts["articles"] == {"updated": 1}


def test_featured_and_a_canonical_elsewhere_reach_the_article_and_page():
    run_import(
        [
            article(featured=True, canonical_url="https://first.example/story"),
            page(canonical_url="https://first.example/about"),
        ]
    )

    story = Article.objects.get()
    assert story.featured and story.canonical_url == "https://first.example/story"
    assert Page.objects.get().canonical_url == "https://first.example/about"


def test_a_canonical_naming_the_old_site_or_no_web_address_is_left_out():
    report = run_import(
        [
            article("p1", canonical_url="https://www.old.example/2019/05/story-p1/"),
            article("p2", canonical_url="javascript:alert(1)"),
        ]
    )

    assert report.counts["articles"] == {"imported": 2}
    assert set(Article.objects.values_list("canonical_url", flat=True)) == {""}
    assert any("not a full web address" in note for note in report.notes)


def test_a_failing_item_fails_alone():
    posts = [article("p1"), page("g3", title=""), article("p4")]

    report = run_import(posts)

    assert report.counts["pages"] == {"failed": 1}
    assert report.counts["articles"] == {"imported": 2}
    assert not Page.objects.exists()
    assert not ImportedItem.objects.filter(kind="page").exists()
    assert [p for p in report.problems if p.startswith("failed page g3 (about-us): ")]


def test_redirects_only_for_public_items(client):
    report = run_import(
        [
            article("p1"),
            article("p2", status=Article.Status.DRAFT, held_because="private at the source"),
            page("g2", slug="secret", status=Article.Status.DRAFT, old_paths=["/secret-old/"]),
        ]
    )

    paths = set(Redirect.objects.values_list("old_path", flat=True))
    assert "/old/p1/" in paths
    assert "/old/p2/" not in paths and "/secret-old/" not in paths
    assert report.counts["drafts"]["imported"] == 2
    assert any("kept as a draft: private at the source" in note for note in report.notes)


def test_the_first_item_to_claim_an_old_address_keeps_it():
    run_import([article("p1", old_paths=["/same/"]), article("p2", old_paths=["/same/"])])

    assert Redirect.objects.get(old_path="/same/").target == (
        Article.objects.get(slug="story-p1").get_absolute_url()
    )


def test_a_dry_run_writes_nothing():
    report = run_import([article(), page()], dry_run=True)

    assert report.counts["articles"] == {"imported": 1}
    assert not Article.objects.exists() and not Page.objects.exists()
    assert not Section.objects.exists() and not Tag.objects.exists()
    assert not Redirect.objects.exists() and not ImportedItem.objects.exists()


def test_skipped_items_are_counted_with_their_reason():
    report = run_import([article(skipped_because="in the trash")])

    assert report.counts["articles"] == {"skipped": 1}
    assert report.problems == ["skipped article p1 (story-p1): in the trash"]
    assert not Article.objects.exists()


def test_an_unreadable_input_is_fatal_and_writes_nothing():
    def read(path: Path) -> SourceRun:
        raise SourceUnreadable("The file ends before the export does.")

    report = source_import(name="test", read=read, path=Path("unused"))

    assert report.fatal == "The file ends before the export does."
    assert not ImportedItem.objects.exists()


def test_images_are_stored_once_and_the_body_points_at_them(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    folder = tmp_path / "images"
    (folder / "2024").mkdir(parents=True)
    Image.new("RGB", (640, 480), "steelblue").save(folder / "2024" / "flood.jpg")
    url = "https://old.example/content/images/2024/flood.jpg"
    photo = SourceImage(url=url, alt="Main Street under water", caption="At dawn.")
    posts = [
        article(
            body=f'<p>x</p><figure><img src="{url}" alt="Main Street"></figure>',
            images={url: photo},
            featured_image=photo,
        ),
        article("p2", featured_image=photo),
    ]

    def relative(address: str) -> str:
        return address.partition("/content/images/")[2]

    report = run_import(posts, media_dir=folder, relative_path=relative)
    again = run_import(posts, media_dir=folder, relative_path=relative)

    story = Article.objects.get(slug="story-p1")
    assert story.image_alt == "Main Street under water" and story.image_caption == "At dawn."
    assert url not in story.body and story.featured_image.name in story.body
    assert report.counts["images"]["imported"] == 1
    assert again.counts["images"] == {"unchanged": 1}
    assert again.counts["articles"] == {"unchanged": 2}


def test_progress_counts_the_posts_when_the_source_counts_nothing_else():
    seen = []

    def read(path: Path) -> SourceRun:
        return SourceRun(source="test:old.example", posts=lambda: [article("p1"), page()], total=2)

    source_import(
        name="test", read=read, path=Path("unused"), progress=lambda *pair: seen.append(pair)
    )

    assert seen == [(2, 2)]


def test_report_lines_name_only_kinds_the_import_met():
    report = ImportReport(source="substack")
    report.record("articles", "imported")
    report.last_line()  # reads every kind's total: no kind appears by being read

    assert report.lines()[0] == "articles: imported 1"
    assert not any(line.endswith(": ") for line in report.lines())
