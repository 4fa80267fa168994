"""The admin's part of bilingual sites: a piece's language, its translations, and the
action that starts a translation. Shared by articles and pages; nothing of it shows on
a site with one language.

The model has `language`, `translation_group`, `language_code` and a `translation_create`
service (`*, <model_name>, language, user`) given as `translation_service`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.conf import settings
from django.conf.locale import LANG_INFO
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext, gettext_lazy, ngettext

from outlet.core.language import is_multilingual, site_languages

LANGUAGE_FIELDS = ("language", "translation_links")


def language_choices() -> list[tuple[str, str]]:
    """The site's languages, blank first: the default, whatever it is at the time."""
    default = LANG_INFO[settings.LANGUAGE_CODE]["name_local"]
    return [("", gettext("Site default (%(language)s)") % {"language": default})] + [
        (code, LANG_INFO[code]["name_local"]) for code in site_languages()
    ]


class LanguageFieldAdminMixin:
    """For a ModelAdmin of a model with a `language` (newsletters, subscribers, donors):
    a select of the site's languages, shown only when there are several."""

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "language":
            return forms.ChoiceField(
                label=db_field.verbose_name,
                choices=language_choices(),
                required=False,
                help_text=db_field.help_text,
            )
        return super().formfield_for_dbfield(db_field, request, **kwargs)  # type: ignore[misc]

    def get_fields(self, request: HttpRequest, obj: Any = None):
        fields = [f for f in super().get_fields(request, obj) if f != "language"]  # type: ignore[misc]
        return [*fields, "language"] if is_multilingual() else fields

    def get_exclude(self, request: HttpRequest, obj: Any = None):
        exclude = list(super().get_exclude(request, obj) or [])  # type: ignore[misc]
        return exclude if is_multilingual() else [*exclude, "language"]


class LanguageAdminMixin(LanguageFieldAdminMixin):
    """For a ModelAdmin of translated pieces (see the module's docstring)."""

    translation_service: Callable[..., Any]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None):
        fieldsets = [
            (
                name,
                {**options, "fields": [f for f in options["fields"] if f not in LANGUAGE_FIELDS]},
            )
            for name, options in super().get_fieldsets(request, obj)  # type: ignore[misc]
        ]
        if is_multilingual():
            fieldsets.append((gettext("Language and translations"), {"fields": LANGUAGE_FIELDS}))
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None):
        readonly = list(super().get_readonly_fields(request, obj))  # type: ignore[misc]
        return [*readonly, "translation_links"]

    def get_list_display(self, request: HttpRequest):
        shown = list(super().get_list_display(request))  # type: ignore[misc]
        return [*shown, "language_shown"] if is_multilingual() else shown

    def has_translate_permission(self, request: HttpRequest) -> bool:
        """Translations exist on a site with several languages, for those who may add."""
        return is_multilingual() and self.has_add_permission(request)  # type: ignore[attr-defined]

    @admin.display(description=gettext_lazy("Language"))
    def language_shown(self, obj: Any) -> str:
        return LANG_INFO[obj.language_code]["name_local"]

    @admin.display(description=gettext_lazy("Translations"))
    def translation_links(self, obj: Any) -> str:
        if obj is None or obj.pk is None:
            return gettext("Save it first; then “Add a translation” in the list starts one.")
        others = (
            type(obj)
            .objects.filter(translation_group=obj.translation_group)
            .exclude(pk=obj.pk)
            .order_by("language")
            if obj.translation_group
            else []
        )
        if not others:
            return gettext("None yet: select it in the list and choose “Add a translation”.")
        meta = obj._meta
        return format_html_join(
            mark_safe("<br>"),  # noqa: S308 (a constant)
            '<a href="{}">{}</a> ({})',
            (
                (
                    reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[other.pk]),
                    str(other),
                    LANG_INFO[other.language_code]["name_local"],
                )
                for other in others
            ),
        )

    @admin.action(
        description=gettext_lazy("Add a translation (a draft in each missing language)"),
        permissions=["translate"],
    )
    def translation_add(self, request: HttpRequest, queryset: QuerySet) -> None:
        created = 0
        for obj in queryset:
            group = type(obj).objects.filter(translation_group=obj.translation_group)
            taken = {o.language_code for o in group} if obj.translation_group else set()
            for language in site_languages():
                if language == obj.language_code or language in taken:
                    continue
                try:
                    self.translation_service(
                        **{obj._meta.model_name: obj, "language": language, "user": request.user}
                    )
                    created += 1
                except (ValidationError, PermissionDenied) as exc:
                    message = " ".join(getattr(exc, "messages", [str(exc)]))
                    self.message_user(request, message, messages.WARNING)  # type: ignore[attr-defined]
        if created:
            self.message_user(  # type: ignore[attr-defined]
                request,
                ngettext(
                    "%(count)d translation draft created.",
                    "%(count)d translation drafts created.",
                    created,
                )
                % {"count": created},
                messages.SUCCESS,
            )
