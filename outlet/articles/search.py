"""Reader search: PostgreSQL full-text search with ranking and highlighted snippets,
and a plain case-insensitive match elsewhere (SQLite in development)."""

from __future__ import annotations

import re

from django.db import connection
from django.db.models import F, Q, QuerySet
from django.utils.html import escape, strip_tags
from django.utils.safestring import SafeString, mark_safe

from .models import Article
from .selectors import article_list

MAX_QUERY_LENGTH = 200
SEARCH_CONFIG = "english"
# Markers that survive strip_tags and escaping, turned into <mark> last.
MARK_START = "\u2063\u2063["
MARK_STOP = "]\u2063\u2063"


def clean_query(raw: str | None) -> str:
    """A query fit to search for: printable, collapsed whitespace, bounded length."""
    text = "".join(ch for ch in (raw or "") if ch.isprintable())
    return " ".join(text.split())[:MAX_QUERY_LENGTH]


def article_search(*, query: str) -> QuerySet[Article]:
    """Published articles matching the query, best first; `snippet` holds safe HTML."""
    if not query:
        return article_list().none()
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import (
            SearchHeadline,
            SearchQuery,
            SearchRank,
            SearchVector,
        )

        vector = (
            SearchVector("headline", weight="A", config=SEARCH_CONFIG)
            + SearchVector("dek", weight="B", config=SEARCH_CONFIG)
            + SearchVector("body", weight="C", config=SEARCH_CONFIG)
        )
        search_query = SearchQuery(query, search_type="websearch", config=SEARCH_CONFIG)
        return (
            article_list()
            .annotate(rank=SearchRank(vector, search_query))
            .filter(rank__gt=0)
            .annotate(
                snippet=SearchHeadline(
                    "body",
                    search_query,
                    config=SEARCH_CONFIG,
                    start_sel=MARK_START,
                    stop_sel=MARK_STOP,
                    max_words=35,
                    min_words=15,
                    max_fragments=2,
                )
            )
            .order_by("-rank", "-publish_at")
        )
    terms = query.split()[:8]
    condition = Q()
    for term in terms:
        condition &= Q(headline__icontains=term) | Q(dek__icontains=term) | Q(body__icontains=term)
    return article_list().filter(condition).annotate(snippet=F("dek")).order_by("-publish_at")


def snippet_html(snippet: str | None, *, query: str) -> SafeString:
    """A snippet as safe HTML: the body's tags stripped, matched words in <mark>.

    PostgreSQL marks the matches itself; elsewhere the query's words are marked here.
    """
    text = str(escape(strip_tags(snippet or "")))
    if MARK_START in text:
        text = text.replace(MARK_START, "<mark>").replace(MARK_STOP, "</mark>")
    else:
        for term in {t for t in query.split() if len(t) > 2}:
            text = re.sub(
                f"(?<![&\\w])({re.escape(escape(term))})", r"<mark>\1</mark>", text, flags=re.I
            )
    return mark_safe(text)  # noqa: S308 (escaped above; only <mark> added)
