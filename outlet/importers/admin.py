from django import forms
from django.contrib import admin
from django.core.cache import cache
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from outlet.articles.services import user_can_publish

from .models import SOURCE_NAMES, ArchiveImport, ImportedItem
from .services import AUTHOR_OPTION, SOURCES, archive_import_progress_key, archive_import_queue


@admin.register(ImportedItem)
class ImportedItemAdmin(admin.ModelAdmin):
    list_display = ["source", "kind", "source_id", "object_id", "location", "updated_at"]
    list_filter = ["source", "kind"]
    search_fields = ["source_id", "location"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class ArchiveImportForm(forms.ModelForm):
    source = forms.ChoiceField(
        label=_("Source"), choices=[(s, SOURCE_NAMES.get(s, s.title())) for s in SOURCES]
    )

    class Meta:
        model = ArchiveImport
        fields = ["source", "upload", "media_from_site", "dry_run", "author"]

    def clean(self) -> dict:
        cleaned = super().clean() or {}
        if cleaned.get("author", "").strip() and cleaned.get("source") not in AUTHOR_OPTION:
            self.add_error(
                "author", _("Only a Substack export takes an author: other exports name theirs.")
            )
        return cleaned


@admin.register(ArchiveImport)
class ArchiveImportAdmin(admin.ModelAdmin):
    """Upload an export; a worker imports it; the page shows the report when it is done."""

    form = ArchiveImportForm
    change_form_template = "admin/importers/archiveimport/change_form.html"
    list_display = ["__str__", "status", "summary", "created_at", "finished_at"]
    readonly_fields = [
        "status",
        "progress",
        "summary",
        "report_text",
        "created_by",
        "started_at",
        "finished_at",
    ]

    def get_fields(self, request: HttpRequest, obj=None):
        if obj is None:
            return ["source", "upload", "media_from_site", "dry_run", "author"]
        return self.readonly_fields

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None):
        # One way on from the upload: to the import's own page (no "add another", no editing).
        extra_context = {
            **(extra_context or {}),
            "show_save_and_add_another": False,
            "show_save_and_continue": False,
        }
        return super().add_view(request, form_url, extra_context)

    def change_view(self, request: HttpRequest, object_id: str, form_url="", extra_context=None):
        running = ArchiveImport.objects.filter(
            pk=object_id, status__in=[ArchiveImport.Status.QUEUED, ArchiveImport.Status.RUNNING]
        ).exists()
        extra_context = {**(extra_context or {}), "running": running}
        return super().change_view(request, object_id, form_url, extra_context)

    def response_add(self, request: HttpRequest, obj: ArchiveImport, post_url_continue=None):
        """To the import's page, which follows the worker until the report is there."""
        self.message_user(request, _("The export is stored; a worker imports it now."))
        return HttpResponseRedirect(reverse("admin:importers_archiveimport_change", args=[obj.pk]))

    def has_add_permission(self, request: HttpRequest) -> bool:
        # An import publishes what the old site published, with no editor's save between.
        return super().has_add_permission(request) and user_can_publish(request.user)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    @admin.display(description=_("progress"))
    def progress(self, obj: ArchiveImport) -> str:
        if obj.status != ArchiveImport.Status.RUNNING:
            return obj.get_status_display()
        done, total = cache.get(archive_import_progress_key(obj.pk)) or (0, 0)
        return _("%(done)s of %(total)s items read") % {"done": done, "total": total}

    @admin.display(description=_("report"))
    def report_text(self, obj: ArchiveImport) -> str:
        return format_html(
            '<pre class="archive-import__report">{}</pre>', obj.report or _("Not finished yet.")
        )

    def save_model(self, request: HttpRequest, obj: ArchiveImport, form, change: bool) -> None:
        job = archive_import_queue(
            source=form.cleaned_data["source"],
            upload=form.cleaned_data["upload"],
            media_from_site=form.cleaned_data["media_from_site"],
            dry_run=form.cleaned_data["dry_run"],
            user=request.user,
            author=form.cleaned_data["author"],
        )
        obj.pk = job.pk
