"""A later import run never undoes what editors did here: deletions, takedowns and edits stay."""

from dataclasses import replace

import pytest

from outlet.articles.models import Article, Author, Section
from outlet.articles.services import article_save, article_unpublish, articles_delete
from outlet.importers.source import SourceTerm
from outlet.pages.models import Page

from .test_post_writer import NEWS, article, page, run_import

pytestmark = pytest.mark.django_db


def test_an_article_deleted_here_is_not_brought_back_by_a_later_run():
    run_import([article()])
    articles_delete(articles=Article.objects.all())

    report = run_import([article()])

    assert not Article.objects.exists()
    assert report.counts["articles"] == {"skipped": 1}
    assert "deleted here" in "\n".join(report.problems)


def test_a_page_deleted_here_is_not_brought_back_by_a_later_run():
    run_import([page()])
    Page.objects.all().delete()

    report = run_import([page(title="About us, revised")])

    assert not Page.objects.exists()
    assert report.counts["pages"] == {"skipped": 1}


def test_an_article_taken_down_here_stays_down_when_the_source_changes():
    run_import([article()])
    article_unpublish(article=Article.objects.get())

    report = run_import([article(title="Story, revised at the source")])

    story = Article.objects.get()
    assert story.status == Article.Status.UNPUBLISHED
    assert story.headline == "Story p1"
    assert report.counts["articles"] == {"skipped": 1}
    assert "changed here" in "\n".join(report.problems)


def test_an_editors_edit_is_kept_when_the_source_changes():
    run_import([article()])
    story = Article.objects.get()
    story.headline = "Story, as our editor put it"
    article_save(article=story)

    run_import([article(body="<p>The source rewrote it.</p>")])

    story.refresh_from_db()
    assert story.headline == "Story, as our editor put it"
    assert "rewrote" not in story.body


def test_a_page_edited_here_is_kept_when_the_source_changes():
    run_import([page()])
    about = Page.objects.get()
    about.status = Page.Status.DRAFT
    about.save()

    report = run_import([page(title="About us, revised")])

    about.refresh_from_db()
    assert (about.title, about.status) == ("About us", Page.Status.DRAFT)
    assert report.counts["pages"] == {"skipped": 1}


def test_an_article_not_edited_here_still_follows_the_source():
    """Run after run: the import's own writes never count as an editor's."""
    run_import([article(), page()])

    for n in (1, 2):
        report = run_import([article(title=f"Story, revised {n}"), page(title=f"About {n}")])

        assert report.counts["articles"] == {"updated": 1}
        assert report.counts["pages"] == {"updated": 1}
        assert Article.objects.get().headline == f"Story, revised {n}"


def test_a_section_or_author_renamed_here_keeps_its_name_on_a_later_run():
    run_import([article()])
    section, author = Section.objects.get(), Author.objects.get()
    section.name, author.name = "Local news", "Jane M. Marsh"
    section.save()
    author.save()

    run_import([article(title="Story, revised")])

    assert Section.objects.get().name == "Local news"
    assert Author.objects.get().name == "Jane M. Marsh"


def test_a_name_changed_at_the_source_still_follows_when_not_renamed_here():
    run_import([article()])

    run_import([article(section=replace(NEWS, name="Newsroom"))])

    assert Section.objects.get().name == "Newsroom"


def test_an_item_moved_to_the_trash_at_the_source_is_no_longer_public_here(client):
    run_import([article(), page()])

    report = run_import(
        [
            article(skipped_because="in the WordPress trash"),
            page(skipped_because="in the WordPress trash"),
        ]
    )

    story, about = Article.objects.get(), Page.objects.get()
    assert not story.is_public and about.status == Page.Status.DRAFT
    assert client.get(story.get_absolute_url()).status_code == 404
    assert "in the WordPress trash" in "\n".join(report.notes)


def test_an_item_back_from_the_trash_is_public_again():
    run_import([article()])
    run_import([article(skipped_because="in the WordPress trash")])

    run_import([article()])

    assert Article.objects.get().is_public


def test_a_category_only_drafts_use_does_not_become_a_public_section(client):
    internal = SourceTerm(source_id="c9", name="Staff only: Acme merger", slug="acme-merger")
    run_import(
        [
            article("p1"),
            article("p2", status=Article.Status.DRAFT, section=internal),
            article("p3", status=Article.Status.DRAFT, section=NEWS),
        ]
    )

    assert not Section.objects.filter(name__contains="Acme").exists()
    assert "Acme" not in client.get("/").text
    assert Article.objects.get(slug="story-p3").section.name == "News"
    assert Article.objects.get(slug="story-p2").headline == "Story p2"
