from django.contrib.sitemaps import views as sitemap_views
from django.urls import path

from . import views
from .caching import public_page
from .feeds import AuthorFeed, LatestArticlesAtomFeed, LatestArticlesFeed, SectionFeed
from .sitemaps import SITEMAPS, news_sitemap

app_name = "articles"

urlpatterns = [
    path("", public_page(views.HomeView.as_view(), "home"), name="home"),
    path("feed/", public_page(LatestArticlesFeed(), "feeds"), name="feed"),
    path("feed/atom/", public_page(LatestArticlesAtomFeed(), "feeds"), name="feed-atom"),
    path(
        "sitemap.xml",
        public_page(sitemap_views.sitemap, "sitemap"),
        {"sitemaps": SITEMAPS},
        name="sitemap",
    ),
    path("sitemap-news.xml", public_page(news_sitemap, "sitemap"), name="news-sitemap"),
    path("search/", public_page(views.SearchView.as_view(), "search"), name="search"),
    path("archive/", public_page(views.ArchiveIndexView.as_view(), "archive"), name="archive"),
    path(
        "archive/<int:year>/<int:month>/",
        public_page(views.ArchiveMonthView.as_view(), "archive"),
        name="archive-month",
    ),
    path("section/<slug:slug>/", public_page(views.SectionView.as_view()), name="section"),
    path("section/<slug:slug>/feed/", public_page(SectionFeed(), "feeds"), name="section-feed"),
    path("author/<slug:slug>/", public_page(views.AuthorView.as_view()), name="author"),
    path("author/<slug:slug>/feed/", public_page(AuthorFeed(), "feeds"), name="author-feed"),
    path("tag/<slug:slug>/", public_page(views.TagView.as_view()), name="tag"),
    path("preview/<int:pk>/", views.article_preview, name="preview"),
    path("share/<str:token>/", views.article_share, name="share"),
    path("<slug:slug>/", public_page(views.article_detail), name="detail"),
]
