from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.views.generic import DetailView, ListView, TemplateView

from .models import Appeal, Article, Author, Section
from .selectors import article_list


class HomeView(TemplateView):
    template_name = "articles/home.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        latest = list(article_list()[:13])
        context["lead"] = latest[0] if latest else None
        context["latest"] = latest[1:]
        return context


class ArticleDetailView(DetailView):
    template_name = "articles/article_detail.html"
    context_object_name = "article"

    def get_queryset(self) -> QuerySet[Article]:
        return article_list().select_related("appeal").prefetch_related("tags")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        article = self.object
        context["appeal"] = article.appeal or Appeal.objects.filter(is_default=True).first()
        return context


class SectionView(ListView):
    template_name = "articles/section.html"
    context_object_name = "articles"
    paginate_by = 20

    def get_queryset(self) -> QuerySet[Article]:
        self.section = get_object_or_404(Section, slug=self.kwargs["slug"])
        return article_list().filter(section=self.section)

    def get_context_data(self, **kwargs):
        return super().get_context_data(section=self.section, **kwargs)


class AuthorView(ListView):
    template_name = "articles/author.html"
    context_object_name = "articles"
    paginate_by = 20

    def get_queryset(self) -> QuerySet[Article]:
        self.author = get_object_or_404(Author, slug=self.kwargs["slug"])
        return article_list().filter(authors=self.author)

    def get_context_data(self, **kwargs):
        return super().get_context_data(author=self.author, **kwargs)
