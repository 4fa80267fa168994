"""RSS and Atom feeds for the whole outlet, each section and each author."""

from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils.feedgenerator import Atom1Feed

from outlet.core.site_url import SiteUrlFeed

from .models import Article, Author, Section
from .selectors import article_list

FEED_SIZE = 30


class LatestArticlesFeed(SiteUrlFeed):
    description_template = None

    def title(self, obj=None) -> str:
        return settings.OUTLET_NAME

    def link(self, obj=None) -> str:
        return "/"

    def description(self, obj=None) -> str:
        return settings.OUTLET_TAGLINE

    def items(self, obj=None) -> QuerySet[Article]:
        return article_list()[:FEED_SIZE]

    def item_title(self, item: Article) -> str:
        return item.headline

    def item_description(self, item: Article) -> str:
        return item.dek

    def item_pubdate(self, item: Article):
        return item.publish_at

    def item_updateddate(self, item: Article):
        return item.revised_at or item.publish_at

    def item_author_name(self, item: Article) -> str:
        return ", ".join(byline.author.name for byline in item.bylines.all())

    def item_categories(self, item: Article) -> list[str]:
        return [item.section.name]


class LatestArticlesAtomFeed(LatestArticlesFeed):
    feed_type = Atom1Feed
    subtitle = LatestArticlesFeed.description


class SectionFeed(LatestArticlesFeed):
    def get_object(self, request, slug: str) -> Section:
        return get_object_or_404(Section, slug=slug)

    def title(self, obj=None) -> str:
        return f"{settings.OUTLET_NAME}: {obj.name}" if obj else settings.OUTLET_NAME

    def link(self, obj=None) -> str:
        return obj.get_absolute_url() if obj else "/"

    def items(self, obj=None) -> QuerySet[Article]:
        return article_list().filter(section=obj)[:FEED_SIZE]


class AuthorFeed(LatestArticlesFeed):
    def get_object(self, request, slug: str) -> Author:
        return get_object_or_404(Author, slug=slug)

    def title(self, obj=None) -> str:
        return f"{settings.OUTLET_NAME}: {obj.name}" if obj else settings.OUTLET_NAME

    def link(self, obj=None) -> str:
        return obj.get_absolute_url() if obj else "/"

    def items(self, obj=None) -> QuerySet[Article]:
        return article_list().filter(authors=obj)[:FEED_SIZE]
