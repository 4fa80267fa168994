"""Reader pages. Thin: selectors fetch, templates render, caching.public_page caches."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import translation
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache
from django.views.generic import ListView, TemplateView

from outlet.core.language import language_versions

from .caching import content_cached
from .edge import article_page_keys, page_keys_add
from .metadata import article_share_image, news_article_json_ld
from .models import Article, Author, Section, Tag
from .search import article_search, clean_query, marked_html
from .selectors import (
    appeal_for,
    archive_months,
    article_for_page,
    article_list,
    article_related,
    article_translations,
    articles_in_month,
    home_page,
)
from .services import user_can_publish
from .sharing import article_for_share_token, article_share_path

PAGE_SIZE = 20


class ListingView(ListView):
    """A paginated list where a malformed or out-of-range ?page= shows the nearest page."""

    paginate_by = PAGE_SIZE
    context_object_name = "articles"

    def paginate_queryset(self, queryset, page_size):
        paginator = self.get_paginator(queryset, page_size)
        raw = str(self.request.GET.get(self.page_kwarg) or "1")[:8]
        page = paginator.get_page(int(raw) if raw.lstrip("-").isdigit() else 1)
        return paginator, page, page.object_list, page.has_other_pages()


class HomeView(TemplateView):
    template_name = "articles/home.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(**home_page(), **kwargs)


def _article_context(article: Article) -> dict[str, Any]:
    return {
        "article": article,
        "appeal": appeal_for(article=article),
        "related": article_related(article=article),
        "json_ld": news_article_json_ld(article),
        "share_image": article_share_image(article),
        "reading_minutes": article.reading_minutes,
        "language_versions": language_versions(article, article_translations(article=article)),
    }


def _public_article_context(slug: str) -> dict[str, Any]:
    article = get_object_or_404(article_for_page(Article.objects.published()), slug=slug)
    return _article_context(article)


def article_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """The public article page, from data kept under the content version (no queries).

    A published article stays public until a save starts a new version, and the version
    also ends when a scheduled article comes out, so the kept data is never stale.
    The data is kept per language: what it holds (related cards, links, inLanguage) is
    the active language's, and the other language's address may be asked for first.
    """
    language = translation.get_language()
    context = content_cached(f"article:{language}:{slug}", lambda: _public_article_context(slug))
    if not context["article"].is_public:
        raise Http404
    if context["article"].language_code != language:
        # Served under its own language's prefix only; an address in another (an old
        # link, a language changed since) leads there. A shared cache holds the redirect
        # under the article's key, so changing the article's language purges it.
        article_page_keys(request, article=context["article"])
        return redirect(context["article"], permanent=True)
    article_page_keys(request, article=context["article"], related=context["related"])
    return render(request, "articles/article_detail.html", context)


@never_cache
def article_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """Any article on the real template, for staff allowed to edit it."""
    if not (request.user.is_authenticated and request.user.is_staff):
        raise Http404
    article = get_object_or_404(article_for_page(Article.objects.all()), pk=pk)
    if not request.user.has_perm("articles.view_article"):
        raise PermissionDenied(gettext("You don't have access to articles."))
    if not user_can_publish(request.user) and article.created_by_id != request.user.pk:
        raise PermissionDenied(gettext("You can preview only the articles you wrote."))
    context = _article_context(article) | {
        "preview": True,
        "share_path": article_share_path(article=article),
    }
    return render(request, "articles/article_detail.html", context)


@never_cache
def article_share(request: HttpRequest, token: str) -> HttpResponse:
    article = article_for_share_token(token=token)
    if article.is_public:
        return redirect(article)
    article = article_for_page(Article.objects.all()).get(pk=article.pk)
    return render(
        request, "articles/article_detail.html", _article_context(article) | {"preview": True}
    )


class SectionView(ListingView):
    template_name = "articles/section.html"

    def get_queryset(self) -> QuerySet[Article]:
        self.section = get_object_or_404(Section, slug=self.kwargs["slug"])
        page_keys_add(self.request, f"section-{self.section.pk}")
        return article_list().filter(section=self.section)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(section=self.section, **kwargs)


class AuthorView(ListingView):
    template_name = "articles/author.html"

    def get_queryset(self) -> QuerySet[Article]:
        self.author = get_object_or_404(Author, slug=self.kwargs["slug"])
        page_keys_add(self.request, f"author-{self.author.pk}")
        return article_list().filter(authors=self.author)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(author=self.author, **kwargs)


class TagView(ListingView):
    template_name = "articles/tag.html"

    def get_queryset(self) -> QuerySet[Article]:
        self.tag = get_object_or_404(Tag, slug=self.kwargs["slug"])
        page_keys_add(self.request, f"tag-{self.tag.pk}")
        return article_list().filter(tags=self.tag)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(tag=self.tag, **kwargs)


class ArchiveIndexView(TemplateView):
    template_name = "articles/archive_index.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(months=archive_months(), **kwargs)


class ArchiveMonthView(ListingView):
    template_name = "articles/archive_month.html"

    def get_queryset(self) -> QuerySet[Article]:
        year, month = self.kwargs["year"], self.kwargs["month"]
        if not (1 <= month <= 12 and 1990 <= year <= 9998):
            raise Http404("No such month.")
        return articles_in_month(year=year, month=month)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        from datetime import date

        month = date(self.kwargs["year"], self.kwargs["month"], 1)
        return super().get_context_data(month=month, **kwargs)


class SearchView(ListingView):
    template_name = "articles/search.html"

    def get_queryset(self) -> QuerySet[Article]:
        self.query = clean_query(self.request.GET.get("q"))
        return article_search(query=self.query)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(query=self.query, **kwargs)
        for article in context["articles"]:
            article.headline_html = marked_html(article.headline_marked, query=self.query)
            article.dek_html = marked_html(article.dek_marked, query=self.query)
            article.snippet_html = marked_html(article.snippet, query=self.query, excerpt=True)
        return context
