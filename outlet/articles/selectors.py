from django.core.cache import cache
from django.db.models import Prefetch, QuerySet

from .models import Article, ArticleAuthor, Section

NAVIGATION_CACHE_KEY = "articles:navigation"


def navigation_sections() -> list[dict[str, str]]:
    """Sections for the masthead navigation, cached until a section changes."""
    sections = cache.get(NAVIGATION_CACHE_KEY)
    if sections is None:
        sections = [
            {"name": s.name, "url": s.get_absolute_url()} for s in Section.objects.only("name", "slug")
        ]
        cache.set(NAVIGATION_CACHE_KEY, sections, 3600)
    return sections


def article_list() -> QuerySet[Article]:
    """Published articles with what a card shows, in a constant number of queries."""
    return (
        Article.objects.published()
        .select_related("section")
        .prefetch_related(
            Prefetch("bylines", queryset=ArticleAuthor.objects.select_related("author"))
        )
    )
