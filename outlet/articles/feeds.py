"""RSS and Atom feeds for the whole outlet, each section and each author.

Each author of a co-written article is an author of their own (an Atom <author> each,
an RSS <dc:creator> each), so feed readers list and link them as the byline does;
Django's generators take one author, so the two below add the rest.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.feedgenerator import Atom1Feed, Rss201rev2Feed

from outlet.core.site_url import SiteUrlFeed

from .metadata import absolute
from .models import Article, Author, Section
from .selectors import article_list

FEED_SIZE = 30
DUBLIN_CORE = "http://purl.org/dc/elements/1.1/"


class BylinesRssFeed(Rss201rev2Feed):
    """RSS 2.0 with a <dc:creator> per author (RSS's own <author> wants an email address)."""

    def rss_attributes(self) -> dict[str, str]:
        return {**super().rss_attributes(), "xmlns:dc": DUBLIN_CORE}

    def add_item_elements(self, handler, item) -> None:
        super().add_item_elements(handler, {**item, "author_name": None, "author_email": None})
        for name, _link in item.get("bylines", []):
            handler.addQuickElement("dc:creator", name)


class BylinesAtomFeed(Atom1Feed):
    """Atom with an <author> (name and page) per author."""

    def add_item_elements(self, handler, item) -> None:
        super().add_item_elements(handler, {**item, "author_name": None})
        for name, link in item.get("bylines", []):
            handler.startElement("author", {})
            handler.addQuickElement("name", name)
            handler.addQuickElement("uri", link)
            handler.endElement("author")


class LatestArticlesFeed(SiteUrlFeed):
    feed_type: type[Rss201rev2Feed | Atom1Feed] = BylinesRssFeed
    description_template = None

    def title(self, obj=None) -> str:
        return settings.OUTLET_NAME

    def link(self, obj=None) -> str:
        return reverse("articles:home")

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

    def item_extra_kwargs(self, item: Article) -> dict[str, object]:
        return {
            "bylines": [
                (byline.author.name, absolute(byline.author.get_absolute_url()))
                for byline in item.bylines.all()
            ]
        }

    def item_categories(self, item: Article) -> list[str]:
        return [item.section.name]


class LatestArticlesAtomFeed(LatestArticlesFeed):
    feed_type = BylinesAtomFeed
    subtitle = LatestArticlesFeed.description


class SectionFeed(LatestArticlesFeed):
    def get_object(self, request, slug: str) -> Section:
        return get_object_or_404(Section, slug=slug)

    def title(self, obj=None) -> str:
        return f"{settings.OUTLET_NAME}: {obj.name}" if obj else settings.OUTLET_NAME

    def link(self, obj=None) -> str:
        return obj.get_absolute_url() if obj else reverse("articles:home")

    def items(self, obj=None) -> QuerySet[Article]:
        return article_list().filter(section=obj)[:FEED_SIZE]


class AuthorFeed(LatestArticlesFeed):
    def get_object(self, request, slug: str) -> Author:
        return get_object_or_404(Author, slug=slug)

    def title(self, obj=None) -> str:
        return f"{settings.OUTLET_NAME}: {obj.name}" if obj else settings.OUTLET_NAME

    def link(self, obj=None) -> str:
        return obj.get_absolute_url() if obj else reverse("articles:home")

    def items(self, obj=None) -> QuerySet[Article]:
        return article_list().filter(authors=obj)[:FEED_SIZE]
