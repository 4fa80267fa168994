from django.urls import path

from . import views

app_name = "articles"

urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("section/<slug:slug>/", views.SectionView.as_view(), name="section"),
    path("author/<slug:slug>/", views.AuthorView.as_view(), name="author"),
    path("<slug:slug>/", views.ArticleDetailView.as_view(), name="detail"),
]
