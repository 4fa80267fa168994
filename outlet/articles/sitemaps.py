"""sitemap.xml for search engines, and a Google News sitemap of the last 48 hours.

Both list canonical addresses only: an article or page whose canonical address is the
original elsewhere (`canonical_url`) is left out, as search engines ask."""

from __future__ import annotations

from collections import defaultdict
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.sitemaps import Sitemap
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from outlet.core.language import (
    is_multilingual,
    language_versions,
    news_sitemap_language,
)
from outlet.pages.models import Page

from .models import Article, Author, Section, Tag
from .selectors import articles_recent_for_news_sitemap


class _SiteUrlSitemap(Sitemap):
    """Addresses on SITE_URL (not the request's Host), without the sites framework."""

    protocol = urlsplit(settings.SITE_URL).scheme

    def get_domain(self, site=None) -> str:
        return urlsplit(settings.SITE_URL).netloc


class _InEachLanguageSitemap(_SiteUrlSitemap):
    """What exists in every language (sections, authors, tags): an entry per language,
    each naming the others as alternates. As before on a site with one language."""

    alternates = True
    x_default = True

    @property
    def i18n(self) -> bool:  # type: ignore[override]
        return is_multilingual()


class _TranslatedSitemap(_SiteUrlSitemap):
    """Articles and pages, each in its own language: an entry each, and when it has
    translations, an xhtml:link alternate per language plus x-default (the default
    language's version). One query per sitemap page for the translations."""

    model: type[Article] | type[Page]

    def get_urls(self, page=1, site=None, protocol=None) -> list[dict]:
        urls = super().get_urls(page=page, site=site, protocol=protocol)
        groups = {url["item"].translation_group for url in urls} - {None}
        if not groups or not is_multilingual():
            return urls
        members: dict[object, list] = defaultdict(list)
        for member in (
            self.model.objects.published()  # type: ignore[attr-defined]
            .canonical_here()
            .filter(translation_group__in=groups)
            .only("slug", "language", "translation_group")
        ):
            members[member.translation_group].append(member)
        base = f"{protocol or self.protocol}://{self.get_domain(site)}"
        for url in urls:
            item = url["item"]
            versions = language_versions(item, members.get(item.translation_group, []))
            if len(versions) < 2:
                continue
            url["alternates"] = [
                {"lang_code": code, "location": f"{base}{path}"} for code, path in versions.items()
            ]
            default = versions.get(settings.LANGUAGE_CODE) or next(iter(versions.values()))
            url["alternates"].append({"lang_code": "x-default", "location": f"{base}{default}"})
        return urls


class ArticleSitemap(_TranslatedSitemap):
    changefreq = "weekly"
    priority = 0.8
    limit = 5000
    model = Article

    def items(self) -> QuerySet[Article]:
        return (
            Article.objects.published()
            .canonical_here()
            .only("slug", "publish_at", "revised_at", "language", "translation_group")
            .order_by("-publish_at")
        )

    def lastmod(self, item: Article):
        return item.revised_at or item.publish_at


class SectionSitemap(_InEachLanguageSitemap):
    changefreq = "hourly"
    priority = 0.6

    def items(self) -> QuerySet[Section]:
        return Section.objects.all()


class AuthorSitemap(_InEachLanguageSitemap):
    changefreq = "daily"
    priority = 0.4

    def items(self) -> QuerySet[Author]:
        return Author.objects.filter(articles__in=Article.objects.published()).distinct()


class TagSitemap(_InEachLanguageSitemap):
    changefreq = "daily"
    priority = 0.3

    def items(self) -> QuerySet[Tag]:
        return Tag.objects.filter(articles__in=Article.objects.published()).distinct()


class PageSitemap(_TranslatedSitemap):
    """Static pages (About, Masthead): the site's own pages, listed here with its articles."""

    changefreq = "monthly"
    priority = 0.5
    model = Page

    def items(self) -> QuerySet[Page]:
        return (
            Page.objects.published()
            .canonical_here()
            .only("slug", "updated_at", "language", "translation_group")
        )

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
    """Google News sitemap: articles published in the last 48 hours, every language's
    (robots.txt names this one only), each with its own <news:language>."""
    entries = [
        {"article": article, "language": news_sitemap_language(article.language_code)}
        for article in articles_recent_for_news_sitemap()
    ]
    return render(
        request,
        "articles/news_sitemap.xml",
        {"entries": entries, "publication_name": settings.OUTLET_NAME},
        content_type="application/xml",
    )
