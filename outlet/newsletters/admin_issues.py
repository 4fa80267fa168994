"""The editors' side of issues: compose, preview, test-send, schedule, send, pause,
resume, cancel, and watch the progress. Every button is a thin view over one
service in issues.py; refusals come back as admin messages.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.safestring import mark_safe
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.csp import csp_override

from outlet.core.csv_export import csv_stream_response
from outlet.donations.currencies import amount_format
from outlet.newsletters import issues
from outlet.newsletters.measuring.report import issue_report, issue_report_rows, issues_gift_totals
from outlet.newsletters.models import HeldBounce, Issue, IssueArticle, IssueStats
from outlet.newsletters.selectors import issue_recipient_count
from outlet.newsletters.sending import HTML_SIZE_LIMIT, issue_render, sample_personalise
from outlet.newsletters.sending.breaker import issue_held_bounces_confirm, issue_held_bounces_lift
from outlet.newsletters.sending.rendering import issue_text_sanitise

#: The email preview is the message as inboxes see it: inline styles, remote images,
#: no scripts at all, and only our own admin may frame it.
PREVIEW_CSP = {
    "default-src": ["'none'"],
    "img-src": ["http:", "https:", "data:"],
    "style-src": ["'unsafe-inline'"],
    "frame-ancestors": ["'self'"],
}
PREVIEW_WIDTHS = [("Desktop", 720), ("Phone", 375)]
#: Issues with something to report: sending began.
REPORTED = (Issue.Status.SENDING, Issue.Status.PAUSED, Issue.Status.SENT, Issue.Status.CANCELLED)


class IssueArticleInline(admin.TabularInline):
    model = IssueArticle
    extra = 2
    autocomplete_fields = ["article"]
    fields = ["position", "article"]
    verbose_name = "article"
    verbose_name_plural = "Articles, in order (lowest position first; published articles only)"

    def _editable(self, obj) -> bool:
        return obj is None or obj.status in (Issue.Status.DRAFT, Issue.Status.SCHEDULED)

    def has_add_permission(self, request, obj=None) -> bool:
        return self._editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._editable(obj) and super().has_delete_permission(request, obj)


@admin.register(Issue)
class IssueAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "newsletter",
        "status",
        "sent_at",
        "sent_count",
        "opened_shown",
        "clicked_shown",
        "unsubscribed_count",
        "bounced_count",
        "raised_shown",
    ]
    list_filter = ["status", "newsletter"]
    search_fields = ["subject"]
    inlines = [IssueArticleInline]
    fields = ["newsletter", "subject", "preheader", "segment", "intro", "body", "appeal"]
    change_form_template = "admin/newsletters/issue/change_form.html"

    class Media:
        css = {"all": ["css/admin-prose.css"]}

    FROZEN_FIELDS = ["newsletter", "subject", "preheader", "segment", "intro_shown", "body_shown"]

    # --- The figures per issue in the list (stored counters; gifts in one query a page) ---

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("newsletter", "stats")

    def get_changelist(self, request, **kwargs):
        return IssueChangeList

    @staticmethod
    def _stats(obj: Issue) -> IssueStats | None:
        return getattr(obj, "stats", None)

    @admin.display(description=_("Sent"), ordering="stats__sent")
    def sent_count(self, obj: Issue) -> object:
        stats = self._stats(obj)
        return stats.sent if stats else "–"

    @admin.display(description=_("Opened ≈"))
    def opened_shown(self, obj: Issue) -> str:
        stats = self._stats(obj)
        return _with_share(stats.opened, stats.delivered) if stats else "–"

    @admin.display(description=_("Clicked"))
    def clicked_shown(self, obj: Issue) -> str:
        stats = self._stats(obj)
        return _with_share(stats.clicked, stats.delivered) if stats else "–"

    @admin.display(description=_("Unsubscribed"), ordering="stats__unsubscribed")
    def unsubscribed_count(self, obj: Issue) -> object:
        stats = self._stats(obj)
        return stats.unsubscribed if stats else "–"

    @admin.display(description=_("Bounced"), ordering="stats__bounced")
    def bounced_count(self, obj: Issue) -> object:
        stats = self._stats(obj)
        return stats.bounced if stats else "–"

    @admin.display(description=_("Gifts / raised"))
    def raised_shown(self, obj: Issue) -> str:
        gifts = getattr(obj, "gift_totals", None)
        if gifts is None or not gifts.count:
            return "–"
        raised = amount_format(amount=gifts.amount, currency=settings.DONATION_CURRENCY)
        return f"{gifts.count} / {raised}"

    def get_fields(self, request, obj=None):
        if self._frozen(obj):
            return [*self.FROZEN_FIELDS, "appeal"]
        return self.fields

    def get_readonly_fields(self, request, obj=None):
        if self._frozen(obj):
            return [*self.FROZEN_FIELDS, "appeal"]  # what went out is frozen
        return []

    @staticmethod
    def _frozen(obj) -> bool:
        return obj is not None and obj.status not in (Issue.Status.DRAFT, Issue.Status.SCHEDULED)

    @admin.display(description=_("Intro"))
    def intro_shown(self, obj: Issue) -> str:
        # Cleaned here too: the text may have been written by something other than the form.
        return mark_safe(issue_text_sanitise(obj.intro))  # noqa: S308 (cleaned by nh3 just now)

    @admin.display(description=_("Body"))
    def body_shown(self, obj: Issue) -> str:
        return mark_safe(issue_text_sanitise(obj.body))  # noqa: S308 (cleaned by nh3 just now)

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def get_urls(self):
        view = self.admin_site.admin_view
        own = [
            path("<int:pk>/preview/", view(self.preview_view), name="newsletters_issue_preview"),
            path(
                "<int:pk>/preview/email/",
                view(self.preview_email_view),
                name="newsletters_issue_preview_email",
            ),
            path("<int:pk>/progress/", view(self.progress_view), name="newsletters_issue_progress"),
            path(
                "<int:pk>/send/",
                view(self.send_confirm_view),
                name="newsletters_issue_send_confirm",
            ),
            path(
                "<int:pk>/report.csv", view(self.report_csv_view), name="newsletters_issue_report"
            ),
            path("<int:pk>/do/<str:action>/", view(self.action_view), name="newsletters_issue_do"),
        ]
        return own + super().get_urls()

    def _issue(self, request: HttpRequest, pk: int) -> Issue:
        issue = get_object_or_404(Issue.objects.select_related("newsletter"), pk=pk)
        if not self.has_view_permission(request, issue):
            raise PermissionDenied
        return issue

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        issue = Issue.objects.filter(pk=object_id).select_related("newsletter").first()
        # Nothing is built (or written) for someone who may not see the issue.
        if issue is not None and self.has_view_permission(request, issue):
            extra_context["issue_progress"] = issues.issue_progress(issue=issue)
            extra_context["issue_problems"] = (
                issues.issue_problems(issue=issue) if issue.status in issues.SENDABLE_FROM else []
            )
            extra_context["local_now"] = timezone.localtime()
            extra_context["held_bounces"] = HeldBounce.objects.filter(
                issue=issue, for_editor=True
            ).count()
            if self._frozen(issue):
                # What went out cannot change: no Save buttons to suggest otherwise.
                extra_context.update(
                    show_save=False, show_save_and_continue=False, show_save_and_add_another=False
                )
            if issue.status in REPORTED:
                extra_context["issue_report"] = issue_report(issue=issue)
        return super().change_view(request, object_id, form_url, extra_context)

    def send_confirm_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Sending reaches every reader at once and cannot be called back: ask first,
        naming the newsletter, how many readers it goes to and the subject."""
        issue = self._issue(request, pk)
        if not self.has_change_permission(request, issue):
            raise PermissionDenied
        if issue.status not in issues.SENDABLE_FROM:
            messages.error(request, gettext("This issue can no longer be sent."))
            return redirect("admin:newsletters_issue_change", pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": issue,
            "title": f"Send “{issue}” now?",
            "recipient_count": issue_recipient_count(issue=issue),
            "issue_problems": issues.issue_problems(issue=issue),
        }
        return TemplateResponse(request, "admin/newsletters/issue/send_confirm.html", context)

    def preview_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        issue = self._issue(request, pk)
        rendered = issue_render(issue=issue)
        size = len(rendered.html.encode("utf-8"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": issue,
            "title": f"Preview: {issue}",
            "email_url": reverse("admin:newsletters_issue_preview_email", args=[issue.pk]),
            "widths": PREVIEW_WIDTHS,
            "size_kb": round(size / 1024, 1),
            "size_ok": size <= HTML_SIZE_LIMIT,
            "text": sample_personalise(rendered.text, html=False),
        }
        return TemplateResponse(request, "admin/newsletters/issue/preview.html", context)

    def preview_email_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        issue = self._issue(request, pk)
        html = sample_personalise(issue_render(issue=issue).html, html=True)
        return preview_email_response(request, html)

    def report_csv_view(self, request: HttpRequest, pk: int) -> StreamingHttpResponse:
        issue = self._issue(request, pk)
        return csv_stream_response(
            issue_report_rows(issue_report(issue=issue)), filename=f"issue-{issue.pk}-report.csv"
        )

    def progress_view(self, request: HttpRequest, pk: int) -> JsonResponse:
        issue = self._issue(request, pk)
        return JsonResponse(issues.issue_progress(issue=issue).as_dict())

    def action_view(self, request: HttpRequest, pk: int, action: str) -> HttpResponse:
        issue = self._issue(request, pk)
        if request.method != "POST":
            return redirect("admin:newsletters_issue_change", pk)
        if not self.has_change_permission(request, issue):
            raise PermissionDenied
        try:
            message = self._act(request, issue, action)
        except ValidationError as exc:
            for text in exc.messages:
                messages.error(request, text)
        else:
            messages.success(request, message)
        return redirect("admin:newsletters_issue_change", pk)

    def _act(self, request: HttpRequest, issue: Issue, action: str) -> str:
        if action == "send":
            if request.POST.get("confirmed") != "yes":
                raise ValidationError(gettext("Confirm the send on its own page first."))
            issues.issue_send_now(issue=issue)
            return gettext("Sending has started. Progress updates below.")
        if action == "schedule":
            send_at = _parse_local(request.POST.get("send_at", ""))
            issues.issue_schedule(issue=issue, send_at=send_at)
            return gettext("Scheduled for %(when)s.") % {
                "when": date_format(timezone.localtime(send_at), "DATETIME_FORMAT")
            }
        if action == "unschedule":
            issues.issue_unschedule(issue=issue)
            return gettext("No longer scheduled; the issue is a draft again.")
        if action == "pause":
            issues.issue_pause(issue=issue, reason=f"Paused by {request.user}.")
            return gettext("Paused. Messages already handed to the mail server are not recalled.")
        if action == "resume":
            issues.issue_resume(issue=issue)
            return gettext("Sending resumed.")
        if action == "bounces-confirm":
            count = issue_held_bounces_confirm(issue=issue)
            return ngettext(
                "%(count)s held bounce confirmed: that address is suppressed.",
                "%(count)s held bounces confirmed: those addresses are suppressed.",
                count,
            ) % {"count": count}
        if action == "bounces-lift":
            count = issue_held_bounces_lift(issue=issue)
            return ngettext(
                "%(count)s held bounce lifted: it is sent again when the issue sends.",
                "%(count)s held bounces lifted: they are sent again when the issue sends.",
                count,
            ) % {"count": count}
        if action == "cancel":
            issues.issue_cancel(issue=issue)
            return gettext("Cancelled. Nobody else will receive this issue.")
        if action == "test":
            sent_to = issues.issue_test_send(issue=issue, addresses=request.POST.get("to", ""))
            return gettext("A test copy is on its way to %(addresses)s.") % {
                "addresses": ", ".join(sent_to)
            }
        raise ValidationError(f"Unknown action {action!r}.")


class IssueChangeList(ChangeList):
    """The issue list, with each row's gifts read for the whole page in one query."""

    def get_results(self, request):
        super().get_results(request)
        totals = issues_gift_totals(self.result_list)
        for issue in self.result_list:
            issue.gift_totals = totals.get(issue.pk)


def _with_share(count: int, of: int) -> str:
    return f"{count} ({100 * count / of:.1f}%)" if of else str(count)


@xframe_options_sameorigin
@csp_override(PREVIEW_CSP)
def _preview_email(request: HttpRequest, html: str) -> HttpResponse:
    return HttpResponse(html)


def preview_email_response(request: HttpRequest, html: str) -> HttpResponse:
    """The email's own HTML, framable by our admin, under a CSP fit for an email."""
    return _preview_email(request, html)


def _parse_local(value: str) -> datetime:
    """A `datetime-local` value, in the outlet's time zone."""
    try:
        naive = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError("Enter the date and time to send, e.g. 2026-05-01 07:00.") from None
    if timezone.is_aware(naive):
        return naive
    return timezone.make_aware(naive, timezone.get_current_timezone())
