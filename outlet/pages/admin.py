from django.contrib import admin

from outlet.articles.admin import InvalidatesPagesAdmin

from .models import Page


@admin.register(Page)
class PageAdmin(InvalidatesPagesAdmin):
    """A page saved, taken back to draft or deleted leaves every cached page at once."""

    list_display = ["title", "slug", "status", "updated_at"]
    list_filter = ["status"]
    search_fields = ["title", "slug"]
    prepopulated_fields = {"slug": ["title"]}
