"""Editors' tools for the audience: lists, subscribers, CSV import and export, erasure.

Every action is a thin wrapper over a service or selector, so the same change
can come from here, a task or a test.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from outlet.core.admin_language import LanguageFieldAdminMixin
from outlet.core.csv_export import csv_stream_response
from outlet.core.paginators import EstimatedCountPaginator
from outlet.newsletters import selectors, services
from outlet.newsletters.audience import importing
from outlet.newsletters.audience.report import subscriber_import_counts
from outlet.newsletters.forms import ImportForm
from outlet.newsletters.models import (
    ConsentRecord,
    Newsletter,
    Subscriber,
    SubscriberImport,
    Subscription,
    Suppression,
)


@admin.register(Newsletter)
class NewsletterAdmin(LanguageFieldAdminMixin, admin.ModelAdmin):
    list_display = [
        "name",
        "visibility",
        "is_active",
        "position",
        "active_count",
        "pending_count",
        "issues_link",
    ]
    list_editable = ["position"]
    prepopulated_fields = {"slug": ["name"]}

    def get_queryset(self, request: HttpRequest):
        # Exact on small lists, from the cache (refreshed by beat) on large ones.
        return selectors.newsletter_subscriber_counts()

    def changelist_view(self, request: HttpRequest, extra_context=None):
        as_of = selectors.newsletter_subscriber_counts_as_of()
        if as_of is not None:
            stamp = timezone.localtime(as_of).strftime("%H:%M")
            extra_context = {
                "subtitle": f"Subscriber counts as of {stamp} (refreshed every few minutes)",
                **(extra_context or {}),
            }
        return super().changelist_view(request, extra_context=extra_context)

    def save_model(self, request, obj, form, change) -> None:
        services.newsletter_save(newsletter=obj)

    def delete_model(self, request, obj) -> None:
        services.newsletter_delete(newsletter=obj)

    def delete_queryset(self, request, queryset) -> None:
        for newsletter in queryset:
            services.newsletter_delete(newsletter=newsletter)

    @admin.display(description="Subscribers", ordering="active_count")
    def active_count(self, obj: Any) -> int:
        return obj.active_count

    @admin.display(description="Awaiting confirmation", ordering="pending_count")
    def pending_count(self, obj: Any) -> int:
        return obj.pending_count

    @admin.display(description="Issues")
    def issues_link(self, obj: Any) -> str:
        """Its issues with their figures side by side (sent, opened, clicked, raised…)."""
        url = reverse("admin:newsletters_issue_changelist") + f"?newsletter__id__exact={obj.pk}"
        return format_html('<a href="{}">Issues and their figures</a>', url)


class SubscriptionInline(admin.TabularInline):
    model = Subscription
    extra = 0
    fields = ["newsletter", "created_at", "confirmed_at", "paused_until"]
    readonly_fields = ["created_at", "confirmed_at"]


class ConsentRecordInline(admin.TabularInline):
    model = ConsentRecord
    extra = 0
    can_delete = False
    fields = [
        "created_at", "kind", "form", "page_url", "newsletters", "ip", "text_shown", "source",
        "from_the_file",
    ]  # fmt: skip
    readonly_fields = [
        "created_at", "kind", "form", "page_url", "newsletters", "ip", "text_shown", "source",
        "from_the_file",
    ]  # fmt: skip

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("Opt-in and confirmation (imported)"))
    def from_the_file(self, record: ConsentRecord) -> str:
        """What an imported list's file said of this reader's consent, if anything."""
        said = []
        if record.opted_in_at or record.opted_in_ip:
            said.append(
                _("opted in %(when)s from %(ip)s")
                % {"when": record.opted_in_at or "?", "ip": record.opted_in_ip or "?"}
            )
        if record.confirmed_at or record.confirmed_ip:
            said.append(
                _("confirmed %(when)s from %(ip)s")
                % {"when": record.confirmed_at or "?", "ip": record.confirmed_ip or "?"}
            )
        return "; ".join(str(part) for part in said) or "–"


class DonorFilter(admin.SimpleListFilter):
    title = "donor"
    parameter_name = "donor"

    def lookups(self, request, model_admin):
        return [("yes", "Donors"), ("no", "Not donors"), ("lapsed", "Lapsed donors")]

    def queryset(self, request, queryset):
        from outlet.newsletters.models import Segment

        segment = {
            "yes": Segment.DONORS,
            "no": Segment.NON_DONORS,
            "lapsed": Segment.LAPSED_DONORS,
        }.get(self.value() or "")
        return queryset.filter(selectors.segment_filter(segment)) if segment else queryset


CHART_HEIGHT = 120
CHART_BAR = 9
CHART_STEP = 22


@admin.register(Subscriber)
class SubscriberAdmin(LanguageFieldAdminMixin, admin.ModelAdmin):
    change_list_template = "admin/newsletters/subscriber/change_list.html"
    change_form_template = "admin/newsletters/subscriber/change_form.html"
    list_display = ["email", "name", "status", "source", "created_at", "confirmed_at"]
    # At a million rows (docs/scale.md): every filter has an index behind it; the
    # newsletter filter offers all lists instead of the distinct ones in use (a scan of
    # every subscription); no date hierarchy (its year links are a DISTINCT over every
    # row; the created_at filter covers it); the paginator counts by estimate.
    list_filter = ["status", ("subscriptions__newsletter", admin.RelatedFieldListFilter),
                   "source", DonorFilter, "created_at"]  # fmt: skip
    search_fields = ["email", "name"]
    paginator = EstimatedCountPaginator
    readonly_fields = [
        "email_hash", "status", "created_at", "confirmed_at", "unsubscribed_at",
        "confirmation_sent_at", "soft_bounce_count",
    ]  # fmt: skip
    fields = ["email", "name", "source", *readonly_fields]
    inlines = [SubscriptionInline, ConsentRecordInline]
    show_full_result_count = False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting would forget the address without suppressing it; "Erase" does both.
        return False

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("import/", view(self.import_view), name="newsletters_subscriber_import"),
            path(
                "import/<int:import_id>/",
                view(self.import_detail_view),
                name="newsletters_subscriber_import_detail",
            ),
            path(
                "import/<int:import_id>/report.csv",
                view(self.import_report_view),
                name="newsletters_subscriber_import_report",
            ),
            path("export.csv", view(self.export_view), name="newsletters_subscriber_export"),
            path(
                "<int:pk>/export.json",
                view(self.data_export_view),
                name="newsletters_subscriber_data_export",
            ),
            path("<int:pk>/erase/", view(self.erase_view), name="newsletters_subscriber_erase"),
            *super().get_urls(),
        ]

    # --- Overview -------------------------------------------------------------

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> Any:
        days = selectors.subscriber_daily_activity(days=30)
        peak = max((max(d.signups, d.unsubscribes) for d in days), default=0) or 1
        chart = []
        for index, day in enumerate(days):
            signup_height = round(day.signups * CHART_HEIGHT / peak)
            unsubscribe_height = round(day.unsubscribes * CHART_HEIGHT / peak)
            x = 36 + index * CHART_STEP
            chart.append(
                {
                    "day": day,
                    "x": x,
                    "x2": x + CHART_BAR,
                    "label_x": x + CHART_BAR,
                    "signup_height": signup_height,
                    "signup_y": 10 + CHART_HEIGHT - signup_height,
                    "unsubscribe_height": unsubscribe_height,
                    "unsubscribe_y": 10 + CHART_HEIGHT - unsubscribe_height,
                    "label": index % 5 == 0,
                }
            )
        extra = {
            "newsletter_counts_as_of": selectors.newsletter_subscriber_counts_as_of(),
            "newsletter_counts": selectors.newsletter_subscriber_counts(),
            "chart": chart,
            "chart_peak": peak,
            "chart_width": 36 + len(days) * CHART_STEP + 10,
            "chart_totals": (sum(d.signups for d in days), sum(d.unsubscribes for d in days)),
            "imports": SubscriberImport.objects.all()[:5],
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context=extra)

    # --- Export ---------------------------------------------------------------

    def export_view(self, request: HttpRequest) -> StreamingHttpResponse:
        """Stream the subscribers matching the changelist's current filters."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        changelist = self.get_changelist_instance(request)
        queryset = changelist.get_queryset(request)
        stamp = timezone.now().strftime("%Y%m%d-%H%M")
        return csv_stream_response(
            selectors.subscriber_csv_rows(queryset=queryset), filename=f"subscribers-{stamp}.csv"
        )

    def data_export_view(self, request: HttpRequest, pk: int) -> JsonResponse:
        subscriber = get_object_or_404(Subscriber, pk=pk)
        if not self.has_view_permission(request, subscriber):
            raise PermissionDenied
        response = JsonResponse(
            selectors.subscriber_data_export(subscriber=subscriber), json_dumps_params={"indent": 2}
        )
        response["Content-Disposition"] = f'attachment; filename="subscriber-{pk}.json"'
        return response

    def erase_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        subscriber = get_object_or_404(Subscriber, pk=pk)
        if not self.has_change_permission(request, subscriber):
            raise PermissionDenied
        from outlet.donations.selectors import donor_for_email
        from outlet.readers.services import address_erase

        has_donor = donor_for_email(email=subscriber.email) is not None
        if request.method == "POST":
            # The whole address goes, as when the reader deletes their account: its reader
            # row, its stored imports, and its donor record (gifts ended), which needs the
            # permission to change donors.
            if has_donor and not request.user.has_perm("donations.change_donor"):
                raise PermissionDenied
            try:
                address_erase(email=subscriber.email)
            except ValidationError as exc:
                self.message_user(request, " ".join(exc.messages), messages.ERROR)
                return redirect("admin:newsletters_subscriber_change", pk)
            self.message_user(
                request,
                f"Subscriber #{pk} erased. Only a hash of the address remains, on the "
                "suppression list, so it cannot be imported or signed up again.",
                messages.SUCCESS,
            )
            return redirect("admin:newsletters_subscriber_changelist")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "subscriber": subscriber,
            "has_donor": has_donor,
            "title": f"Erase subscriber #{pk}?",
        }
        return TemplateResponse(request, "admin/newsletters/subscriber/erase.html", context)

    # --- Import ---------------------------------------------------------------

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                job = importing.subscriber_import_create(
                    data=upload,
                    filename=upload.name,
                    newsletters=form.cleaned_data["newsletters"],
                    consent_confirmed=form.cleaned_data["consent_confirmed"],
                    consent_text=form.cleaned_data["consent_text"],
                    created_by=request.user,
                    source_format=form.cleaned_data["format"],
                )
            except ValidationError as exc:
                form.add_error("file", exc)
            else:
                from django.conf import settings

                if job.total_rows <= settings.NEWSLETTER_IMPORT_INLINE_ROWS:
                    importing.subscriber_import_run(job=job)
                else:
                    from outlet.newsletters.tasks import subscriber_import_run_task

                    job_id = job.pk
                    transaction.on_commit(lambda: subscriber_import_run_task.delay(job_id))
                return redirect("admin:newsletters_subscriber_import_detail", import_id=job.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "form": form,
            "title": _("Import subscribers"),
        }
        return TemplateResponse(request, "admin/newsletters/subscriber/import.html", context)

    def _import(self, request: HttpRequest, import_id: int) -> SubscriberImport:
        """An import, for staff who may see imports or subscribers (its refused rows and
        its report name addresses): being staff is not enough."""
        import_admin = self.admin_site._registry[SubscriberImport]
        if not (self.has_view_permission(request) or import_admin.has_view_permission(request)):
            raise PermissionDenied
        return get_object_or_404(SubscriberImport, pk=import_id)

    def import_detail_view(self, request: HttpRequest, import_id: int) -> HttpResponse:
        job = self._import(request, import_id)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "job": job,
            "summary": sorted(job.summary.items()),
            "counts": subscriber_import_counts(job=job),
            "problems": [refusal.as_row() for refusal in job.refusals.all()[:500]],
            "problem_count": job.refusals.count(),
            "running": job.status
            in (SubscriberImport.Status.QUEUED, SubscriberImport.Status.RUNNING),
            "report_url": reverse("admin:newsletters_subscriber_import_report", args=[job.pk]),
            "title": _("Import #%(number)s: %(file)s") % {"number": job.pk, "file": job.filename},
        }
        return TemplateResponse(request, "admin/newsletters/subscriber/import_detail.html", context)

    def import_report_view(self, request: HttpRequest, import_id: int) -> StreamingHttpResponse:
        job = self._import(request, import_id)
        return csv_stream_response(
            selectors.subscriber_import_report_rows(job=job), filename=f"import-{job.pk}-report.csv"
        )


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ["email_hash", "reason", "created_at", "detail"]
    list_filter = ["reason"]
    search_fields = ["email_hash"]
    readonly_fields = ["email_hash", "reason", "detail", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_search_results(self, request, queryset, search_term):
        # Editors search by address; only its digest is stored.
        from outlet.core.addresses import email_digest

        if "@" in search_term:
            return queryset.filter(email_hash=email_digest(search_term)), False
        return super().get_search_results(request, queryset, search_term)


@admin.register(SubscriberImport)
class SubscriberImportAdmin(admin.ModelAdmin):
    list_display = [
        "__str__", "format", "status", "total_rows", "imported_rows", "created_by", "created_at",
    ]  # fmt: skip
    readonly_fields = [
        "filename", "format", "newsletters", "consent_text", "created_by", "created_at",
        "finished_at", "status", "total_rows", "processed_rows", "imported_rows",
    ]  # fmt: skip

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        return redirect("admin:newsletters_subscriber_import_detail", import_id=object_id)

    def get_deleted_objects(self, objs, request):
        """What a delete removes, said per import: Django's own list would load every
        stored part of each file (a million rows) to name them one by one."""
        objs = list(objs)
        described = [
            f"{job}: its stored file ({job.total_rows} rows) and its report" for job in objs
        ]
        return described, {SubscriberImport._meta.verbose_name_plural: len(objs)}, set(), []


# Newsletter issues (the sending engine), registered with the rest of the app's admin.
from outlet.newsletters import admin_issues  # noqa: E402, F401
from outlet.newsletters.bounces import admin as bounces_admin  # noqa: E402, F401
