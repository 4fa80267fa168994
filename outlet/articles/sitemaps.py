"""sitemap.xml for search engines, and a Google News sitemap of the last 48 hours.

Both list canonical addresses only: an article or page whose canonical address is the
original elsewhere (`canonical_url`) is left out, as search engines ask."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.sitemaps import Sitemap
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from outlet.core.language import active_language, news_sitemap_language
from outlet.pages.models import Page

from .models import Article, Author, Section, Tag
from .selectors import articles_recent_for_news_sitemap


class _SiteUrlSitemap(Sitemap):
    """Addresses on SITE_URL (not the request's Host), without the sites framework."""

    protocol = urlsplit(settings.SITE_URL).scheme

    def get_domain(self, site=None) -> str:
        return urlsplit(settings.SITE_URL).netloc


class ArticleSitemap(_SiteUrlSitemap):
    changefreq = "weekly"
    priority = 0.8
    limit = 5000

    def items(self) -> QuerySet[Article]:
        return (
            Article.objects.published()
            .canonical_here()
            .only("slug", "publish_at", "revised_at")
            .order_by("-publish_at")
        )

    def lastmod(self, item: Article):
        return item.revised_at or item.publish_at


class SectionSitemap(_SiteUrlSitemap):
    changefreq = "hourly"
    priority = 0.6

    def items(self) -> QuerySet[Section]:
        return Section.objects.all()


class AuthorSitemap(_SiteUrlSitemap):
    changefreq = "daily"
    priority = 0.4

    def items(self) -> QuerySet[Author]:
        return Author.objects.filter(articles__in=Article.objects.published()).distinct()


class TagSitemap(_SiteUrlSitemap):
    changefreq = "daily"
    priority = 0.3

    def items(self) -> QuerySet[Tag]:
        return Tag.objects.filter(articles__in=Article.objects.published()).distinct()


class PageSitemap(_SiteUrlSitemap):
    """Static pages (About, Masthead): the site's own pages, listed here with its articles."""

    changefreq = "monthly"
    priority = 0.5

    def items(self) -> QuerySet[Page]:
        return Page.objects.published().canonical_here().only("slug", "updated_at")

    def lastmod(self, item: Page):
        return item.updated_at


SITEMAPS = {
    "articles": ArticleSitemap,
    "pages": PageSitemap,
    "sections": SectionSitemap,
    "authors": AuthorSitemap,
    "tags": TagSitemap,
}


def news_sitemap(request: HttpRequest) -> HttpResponse:
    """Google News sitemap: articles published in the last 48 hours."""
    return render(
        request,
        "articles/news_sitemap.xml",
        {
            "articles": articles_recent_for_news_sitemap(),
            "publication_name": settings.OUTLET_NAME,
            "publication_language": news_sitemap_language(active_language()),
        },
        content_type="application/xml",
    )
