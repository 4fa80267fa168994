"""Reader search: PostgreSQL full-text search with ranking and highlighted headlines,
deks and body snippets, and a plain case-insensitive match elsewhere (SQLite in
development) whose marks and snippets are made here to look the same.

A result card shows the headline, the dek and a snippet of the body, each once, with
the query's words marked as whole words ("districts" for "district", as PostgreSQL's
stemmer does), never the front of a longer word.
"""

from __future__ import annotations

import re

from django.db import connection
from django.db.models import F, Q, QuerySet
from django.utils.html import escape, strip_tags
from django.utils.safestring import SafeString, mark_safe

from .models import Article
from .selectors import article_list

MAX_QUERY_LENGTH = 200
MAX_TERMS = 8
SEARCH_CONFIG = "english"
SNIPPET_WORDS = 35
# Markers that survive strip_tags and escaping, turned into <mark> last.
MARK_START = "\u2063\u2063["
MARK_STOP = "]\u2063\u2063"
# Where one block of the body ends and the next begins: a space, so that stripping the
# tags does not glue the last word of a paragraph to the first of the next.
_BLOCK_EDGE = re.compile(
    r"</?(?:p|h[1-6]|li|ul|ol|blockquote|figure|figcaption|br|hr)\b[^>]*>", re.I
)


def clean_query(raw: str | None) -> str:
    """A query fit to search for: printable, collapsed whitespace, bounded length."""
    text = "".join(ch for ch in (raw or "") if ch.isprintable())
    return " ".join(text.split())[:MAX_QUERY_LENGTH]


def _terms(query: str) -> list[str]:
    """The words a result is matched and marked by (operators and quotes left out)."""
    words = re.findall(r"\w[\w'’-]*", query)
    return [word for word in words if word.lower() not in {"or", "and", "not"}][:MAX_TERMS]


def article_search(*, query: str) -> QuerySet[Article]:
    """Published articles matching the query, best first, annotated with `headline_marked`,
    `dek_marked` and `snippet` (text with MARK_START/MARK_STOP around matches on
    PostgreSQL; plain text elsewhere, marked by `marked_html`)."""
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

        def marked(field: str, **options: int | bool) -> SearchHeadline:
            return SearchHeadline(
                field,
                search_query,
                config=SEARCH_CONFIG,
                start_sel=MARK_START,
                stop_sel=MARK_STOP,
                **options,  # type: ignore[arg-type]
            )

        return (
            article_list()
            .annotate(rank=SearchRank(vector, search_query))
            .filter(rank__gt=0)
            .annotate(
                headline_marked=marked("headline", highlight_all=True),
                dek_marked=marked("dek", highlight_all=True),
                snippet=marked("body", max_words=SNIPPET_WORDS, min_words=15, max_fragments=2),
            )
            .order_by("-rank", "-publish_at")
        )
    condition = Q()
    for term in _terms(query) or [query]:
        condition &= Q(headline__icontains=term) | Q(dek__icontains=term) | Q(body__icontains=term)
    return (
        article_list()
        .filter(condition)
        .annotate(headline_marked=F("headline"), dek_marked=F("dek"), snippet=F("body"))
        .order_by("-publish_at")
    )


def _excerpt(text: str, *, query: str) -> str:
    """About SNIPPET_WORDS words of plain text around the first word the query matches."""
    words = text.split()
    lowered = [word.lower() for word in words]
    terms = [term.lower() for term in _terms(query)]
    first = next((i for i, word in enumerate(lowered) if any(term in word for term in terms)), 0)
    start = max(0, first - SNIPPET_WORDS // 3)
    piece = " ".join(words[start : start + SNIPPET_WORDS])
    return ("… " if start else "") + piece + (" …" if start + SNIPPET_WORDS < len(words) else "")


def marked_html(text: str | None, *, query: str, excerpt: bool = False) -> SafeString:
    """Text as safe HTML with the query's words in <mark>: tags stripped, the rest escaped.

    PostgreSQL marks the matches itself; elsewhere each word that contains a query term
    is marked whole (`excerpt` also cuts a body down to the words around its first match).
    """
    plain = " ".join(strip_tags(_BLOCK_EDGE.sub(" ", text or "")).split())
    if MARK_START in plain:
        html = str(escape(plain)).replace(MARK_START, "<mark>").replace(MARK_STOP, "</mark>")
        return mark_safe(html)  # noqa: S308 (escaped above; only <mark> added)
    if excerpt:
        plain = _excerpt(plain, query=query)
    terms = sorted({term for term in _terms(query) if len(term) > 2}, key=len, reverse=True)
    if not terms:
        return escape(plain)
    word = re.compile(
        r"\w*(?:" + "|".join(re.escape(term) for term in terms) + r")\w*", re.IGNORECASE
    )
    pieces: list[str] = []
    last = 0
    for match in word.finditer(plain):
        pieces.append(str(escape(plain[last : match.start()])))
        pieces.append(f"<mark>{escape(match.group())}</mark>")
        last = match.end()
    pieces.append(str(escape(plain[last:])))
    return mark_safe("".join(pieces))  # noqa: S308 (each piece escaped; only <mark> added)
