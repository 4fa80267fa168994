from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils import timezone, translation

from outlet.core.language import is_multilingual, language_valid

from .models import Appeal, Article, ArticleAuthor, Section

NAVIGATION_CACHE_KEY = "articles:navigation"
RELATED_COUNT = 4
RAIL_SIZE = 4
#: The lead and the featured articles under it.
FEATURED_COUNT = 3


def navigation_sections() -> list[dict[str, str]]:
    """Sections for the masthead navigation, cached until a section changes.

    Kept per language: the addresses carry the page's language prefix.
    """
    key = navigation_cache_key(translation.get_language())
    sections = cache.get(key)
    if sections is None:
        sections = [
            {"name": s.name, "url": s.get_absolute_url()}
            for s in Section.objects.only("name", "slug")
        ]
        cache.set(key, sections, 3600)
    return sections


def navigation_cache_key(language: str | None) -> str:
    """The default language keeps the key a site with one language always had."""
    language = language_valid(language)
    if language == settings.LANGUAGE_CODE:
        return NAVIGATION_CACHE_KEY
    return f"{NAVIGATION_CACHE_KEY}:{language}"


def _with_bylines(queryset: QuerySet[Article]) -> QuerySet[Article]:
    return queryset.select_related("section").prefetch_related(
        Prefetch("bylines", queryset=ArticleAuthor.objects.select_related("author"))
    )


def article_list() -> QuerySet[Article]:
    """Published articles with what a card shows, in a constant number of queries.

    The body is left out: lists never show it, and bodies run to thousands of words.
    """
    return _with_bylines(Article.objects.published().in_language().defer("body"))


def article_for_page(queryset: QuerySet[Article]) -> QuerySet[Article]:
    """An article with all its page shows: section, appeal, bylines, tags."""
    return _with_bylines(queryset).select_related("appeal").prefetch_related("tags")


def article_related(*, article: Article, limit: int = RELATED_COUNT) -> list[Article]:
    """Published articles sharing most tags with this one, then its section's latest.

    One query for the articles and one for their bylines, whatever the number of tags.
    """
    tag_ids = [tag.pk for tag in article.tags.all()]
    return list(
        article_list()
        .exclude(pk=article.pk)
        .filter(Q(tags__in=tag_ids) | Q(section_id=article.section_id))
        .annotate(shared_tags=Count("tags", filter=Q(tags__in=tag_ids), distinct=True))
        .order_by("-shared_tags", "-publish_at")[:limit]
    )


def article_translations(*, article: Article) -> list[Article]:
    """The article's public translations (none on a site with one language)."""
    if article.translation_group is None or not is_multilingual():
        return []
    return list(
        Article.objects.published()
        .filter(translation_group=article.translation_group)
        .exclude(pk=article.pk)
        .only("slug", "language", "translation_group")
    )


def appeal_for(*, article: Article) -> Appeal | None:
    return article.appeal or Appeal.objects.filter(is_default=True).first()


def home_page() -> dict[str, object]:
    """Lead story, other featured, latest list and one rail per section, in five queries.

    The newest featured article leads and the next featured follow it; without any,
    the newest article leads. A featured article is shown once on the front: the
    latest list leaves it out (the section rails, a different view, may repeat it).
    """
    featured = list(article_list().filter(featured=True)[:FEATURED_COUNT])
    recent = list(article_list()[:80])
    lead = featured[0] if featured else recent[0] if recent else None
    shown = {article.pk for article in featured} | ({lead.pk} if lead else set())
    latest = [article for article in recent if article.pk not in shown][:7]
    by_section: dict[int, list[Article]] = defaultdict(list)
    for article in recent:
        if article != lead and len(by_section[article.section_id]) < RAIL_SIZE:
            by_section[article.section_id].append(article)
    sections = {a.section_id: a.section for a in recent}
    rails = [
        {"section": section, "articles": by_section[section.pk]}
        for section in sorted(sections.values(), key=lambda s: (s.position, s.name))
        if by_section[section.pk]
    ]
    return {"lead": lead, "featured": featured[1:], "latest": latest, "rails": rails}


def archive_months() -> list[datetime]:
    """Months (in the outlet's time zone) that have published articles, newest first."""
    return list(
        Article.objects.published()
        .in_language()
        .datetimes("publish_at", "month", order="DESC", tzinfo=timezone.get_current_timezone())
    )


def articles_in_month(*, year: int, month: int) -> QuerySet[Article]:
    zone = timezone.get_current_timezone()
    start = datetime(year, month, 1, tzinfo=zone)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=zone)
    return article_list().filter(publish_at__gte=start, publish_at__lt=end)


def articles_recent_for_news_sitemap(*, hours: int = 48) -> QuerySet[Article]:
    since = timezone.now() - timedelta(hours=hours)
    return (
        Article.objects.published()
        .canonical_here()
        .filter(publish_at__gte=since)
        .only("slug", "headline", "publish_at", "language")
        .order_by("-publish_at")[:1000]
    )
