"""Search results as a reader reads them: each part once, whole words marked, the
headline marked too. Runs on SQLite (the fallback) and on PostgreSQL (full text)."""

import re

import pytest

from tests.factories import ArticleFactory

pytestmark = pytest.mark.django_db


def results_of(client, query: str) -> str:
    text = client.get("/search/", {"q": query}).content.decode()
    return text.split('class="search-count"')[1].split('class="site-footer"')[0]


def test_search_result_shows_the_dek_once(client):
    ArticleFactory(
        headline="New council map",
        dek="What the new lines mean for your ward.",
        body="<p>The council voted on the new map of every ward on Tuesday.</p>",
    )

    results = results_of(client, "council")

    assert results.count("What the new lines mean for your") == 1


def test_search_marks_whole_words_not_the_front_of_them(client):
    ArticleFactory(
        headline="Budget hearing",
        dek="The county's eleven districts will see new boundaries.",
        body="<p>Residents of all districts can comment.</p>",
    )

    results = results_of(client, "district")

    assert "<mark>districts</mark>" in results
    assert "<mark>district</mark>s" not in results


def test_search_marks_the_words_in_the_headline(client):
    ArticleFactory(headline="Why the quarry closed", dek="A dek.", body="<p>Nothing here.</p>")

    results = results_of(client, "quarry")

    headline = re.search(r'class="card__headline">(.*?)</h2>', results, re.S).group(1)
    assert "<mark>quarry</mark>" in headline
    assert 'href="/' in headline  # the headline still links to the article


def test_search_snippet_quotes_the_body_where_it_matches(client):
    filler = "<p>" + "Unrelated words about the weather. " * 40 + "</p>"
    ArticleFactory(
        headline="A long read",
        dek="A dek about nothing much.",
        body=filler + "<p>Late in the piece the quarry finally appears.</p>" + filler,
    )

    results = results_of(client, "quarry")

    snippet = re.search(r'class="card__snippet">(.*?)</p>', results, re.S).group(1)
    assert "the <mark>quarry</mark> finally appears" in snippet


def test_search_marks_are_escaped_text_not_markup_from_the_article(client):
    ArticleFactory(
        headline="Tags & <b>quarry</b> talk", dek="A dek.", body="<p>The quarry &amp; more.</p>"
    )

    results = results_of(client, "quarry")

    assert "<b>" not in results
    assert "&amp;" in results


def test_search_snippet_keeps_words_of_separate_paragraphs_apart(client):
    ArticleFactory(
        headline="Ward maps",
        body="<p>The quarry closed.</p><h2>What next</h2><p>Nobody knows.</p>",
    )

    results = results_of(client, "quarry")

    snippet = re.search(r'class="card__snippet">(.*?)</p>', results, re.S).group(1)
    assert "closed. What next Nobody knows" in snippet
