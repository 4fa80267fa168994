from django.urls import path

from outlet.articles.caching import public_page

from . import views

app_name = "pages"

urlpatterns = [
    path("<slug:slug>/", public_page(views.page_detail), name="detail"),
]
