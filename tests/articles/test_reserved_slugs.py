"""An article's slug is its address at the site's root: one the site already answers
(a section of the site, a tool, a file) must be refused, or the article is unreachable."""

import re

from django.urls import URLPattern, URLResolver, get_resolver

from outlet.articles.services import RESERVED_SLUGS

FIRST_SEGMENT = re.compile(r"^\^?([A-Za-z0-9_.\-]+)")


def _first_segments(patterns, prefix: str = "") -> set[str]:
    found: set[str] = set()
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver) and not str(pattern.pattern):
            found |= _first_segments(pattern.url_patterns, prefix)
            continue
        match = FIRST_SEGMENT.match(route)
        if match and isinstance(pattern, URLPattern | URLResolver):
            segment = match.group(1).rstrip("/")
            if segment and not segment.startswith("<"):
                found.add(segment)
    return found


def test_every_address_the_site_answers_at_its_root_is_a_reserved_slug():
    answered = _first_segments(get_resolver().url_patterns)

    assert "donate" in answered and "feed" in answered  # the scan sees the site's addresses
    assert answered - RESERVED_SLUGS == set()


def test_a_language_prefix_is_reserved_whatever_its_case(bilingual):
    # Review: on SITE_LANGUAGES=es,en, /en/ (and /EN/, which answers 404) is never an
    # article: an article slugged "en" or "EN" would be unreachable.
    from outlet.articles.services import article_publication_problems
    from tests.factories import ArticleFactory

    for slug in ("en", "EN", "es"):
        article = ArticleFactory.build(slug=slug)
        assert "slug" in article_publication_problems(article=article, author_count=1), slug
