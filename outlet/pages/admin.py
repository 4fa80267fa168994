from django import forms
from django.contrib import admin
from django.utils.translation import gettext

from outlet.articles.admin import InvalidatesPagesAdmin
from outlet.core.admin_language import LanguageAdminMixin
from outlet.core.language import language_q

from .models import Page
from .services import page_translation_create


class PageAdminForm(forms.ModelForm):
    class Meta:
        model = Page
        fields = "__all__"  # noqa: DJ007 (the ModelAdmin chooses the fields)

    def clean(self):
        cleaned = super().clean() or {}
        group = self.instance.translation_group
        if (
            group is not None
            and Page.objects.filter(translation_group=group)
            .filter(language_q(cleaned.get("language")))
            .exclude(pk=self.instance.pk)
            .exists()
        ):
            self.add_error(
                "language" if "language" in self.fields else None,
                gettext("Another translation of this page is already in this language."),
            )
        return cleaned


@admin.register(Page)
class PageAdmin(LanguageAdminMixin, InvalidatesPagesAdmin):
    """A page saved, taken back to draft or deleted leaves every cached page at once."""

    form = PageAdminForm
    list_display = ["title", "slug", "status", "updated_at"]
    list_filter = ["status"]
    search_fields = ["title", "slug"]
    prepopulated_fields = {"slug": ["title"]}
    actions = ["translation_add"]
    translation_service = staticmethod(page_translation_create)
