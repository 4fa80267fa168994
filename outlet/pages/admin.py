from django.contrib import admin

from outlet.articles.admin import InvalidatesPagesAdmin
from outlet.core.admin_language import LanguageAdminMixin

from .models import Page
from .services import page_translation_create


@admin.register(Page)
class PageAdmin(LanguageAdminMixin, InvalidatesPagesAdmin):
    """A page saved, taken back to draft or deleted leaves every cached page at once."""

    list_display = ["title", "slug", "status", "updated_at"]
    list_filter = ["status"]
    search_fields = ["title", "slug"]
    prepopulated_fields = {"slug": ["title"]}
    actions = ["translation_add"]
    translation_service = staticmethod(page_translation_create)
