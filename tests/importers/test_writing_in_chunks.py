"""The writer at archive scale: posts written a chunk at a time keep every guarantee."""

import pytest
from django.db import IntegrityError

from outlet.articles import services as article_services
from outlet.articles.models import Article, ArticleAuthor, ArticleRevision
from outlet.importers import chunks
from outlet.importers.models import ImportedItem
from outlet.redirects.models import Redirect
from tests.factories import ArticleFactory
from tests.importers.test_post_writer import article, run_import

pytestmark = pytest.mark.django_db


def many(n: int, start: int = 1) -> list:
    return [article(f"p{i}") for i in range(start, start + n)]


def test_a_chunked_import_writes_every_post_with_its_bylines_tags_revision_and_mapping():
    report = run_import(many(7))

    assert report.counts["articles"]["imported"] == 7
    assert Article.objects.count() == 7
    assert ArticleRevision.objects.count() == 7
    assert ArticleAuthor.objects.count() == 7
    assert Article.tags.through.objects.count() == 7
    assert ImportedItem.objects.filter(kind="article").count() == 7
    assert Redirect.objects.filter(old_path__startswith="/old/p").count() == 7


def test_a_second_run_over_several_chunks_changes_nothing(monkeypatch):
    monkeypatch.setattr(chunks, "CHUNK_SIZE", 3)
    run_import(many(8))
    before = list(Article.objects.order_by("pk").values_list("pk", "slug", "updated_at"))

    report = run_import(many(8))

    assert report.counts["articles"] == {"unchanged": 8}
    assert list(Article.objects.order_by("pk").values_list("pk", "slug", "updated_at")) == before
    assert ArticleRevision.objects.count() == 8


def test_a_post_the_database_refuses_fails_alone_and_the_rest_of_its_chunk_is_written(
    monkeypatch,
):
    real_create = article_services.articles_import_create

    def refuse_story_p2(*, articles, note=""):
        if any(a.headline == "Story p2" for a, _ in articles):
            raise IntegrityError("refused")
        return real_create(articles=articles, note=note)

    monkeypatch.setattr(chunks, "articles_import_create", refuse_story_p2)
    report = run_import(many(4))

    assert sorted(Article.objects.values_list("slug", flat=True)) == [
        "story-p1",
        "story-p3",
        "story-p4",
    ]
    assert report.counts["articles"]["imported"] == 3
    assert report.counts["articles"]["failed"] == 1
    assert any("Story p2" in line or "p2" in line for line in report.problems)
    assert not ImportedItem.objects.filter(source_id="p2").exists()
    assert not Redirect.objects.filter(old_path="/old/p2/").exists()
    # The next run writes it once the database takes it.
    monkeypatch.setattr(chunks, "articles_import_create", real_create)
    again = run_import(many(4))
    assert again.counts["articles"] == {"imported": 1, "unchanged": 3}


def test_a_post_the_publication_checks_refuse_is_kept_as_a_draft_beside_the_others():
    no_alt = article("p2", body='<p>See <img src="/media/x.jpg"></p>')
    report = run_import([article("p1"), no_alt, article("p3")])

    statuses = dict(Article.objects.values_list("slug", "status"))
    assert statuses == {
        "story-p1": Article.Status.PUBLISHED,
        "story-p2": Article.Status.DRAFT,
        "story-p3": Article.Status.PUBLISHED,
    }
    assert report.counts["drafts"]["imported"] == 1
    assert any("p2" in note and "kept as a draft" in note for note in report.notes)
    assert not Redirect.objects.filter(old_path="/old/p2/").exists()


def test_slug_clashes_in_one_chunk_and_with_stored_articles_get_a_suffix():
    ArticleFactory(slug="taken")
    posts = [article("p1", slug="taken"), article("p2", slug="twice"), article("p3", slug="twice")]

    report = run_import(posts)

    slugs = dict(ImportedItem.objects.filter(kind="article").values_list("source_id", "object_id"))
    by_pk = dict(Article.objects.values_list("pk", "slug"))
    assert by_pk[slugs["p1"]] == "taken-p1"
    assert by_pk[slugs["p2"]] == "twice"
    assert by_pk[slugs["p3"]] == "twice-p3"
    assert sum("was taken" in note for note in report.notes) == 2


def test_the_same_post_twice_in_one_chunk_is_one_article_updated():
    report = run_import([article("p1"), article("p1", title="Story p1, corrected")])

    assert Article.objects.get().headline == "Story p1, corrected"
    assert report.counts["articles"] == {"imported": 1, "updated": 1}
    assert ImportedItem.objects.filter(source_id="p1").count() == 1


def test_a_dry_run_of_many_posts_writes_nothing():
    report = run_import(many(12), dry_run=True)

    assert report.counts["articles"]["imported"] == 12
    assert Article.objects.count() == 0
    assert ImportedItem.objects.count() == 0
    assert Redirect.objects.count() == 0


def test_bodies_are_sanitised_on_the_bulk_path():
    run_import([article("p1", body='<p onclick="x()">Hi</p><script>alert(1)</script>')])

    body = Article.objects.get().body
    assert "onclick" not in body and "script" not in body and "Hi" in body


def test_queries_per_post_stay_bounded(django_assert_max_num_queries):
    posts = many(50)
    # People, sections and tags are looked up once per run, articles a chunk at a time:
    # 50 posts cost about one query each at most (45 when written; ~12 each before chunks).
    with django_assert_max_num_queries(60):
        report = run_import(posts)
    assert report.counts["articles"]["imported"] == 50
    with django_assert_max_num_queries(30):
        again = run_import(posts)
    assert again.counts["articles"] == {"unchanged": 50}
