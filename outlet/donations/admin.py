"""Editors' view of the money: donations with filters and totals, gifts, donors,
campaigns; a refund action and a streaming CSV export, both thin over services."""

from __future__ import annotations

import re
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.text import smart_split, unescape_string_literal
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from outlet.core.admin_language import LanguageFieldAdminMixin
from outlet.core.csv_export import csv_stream_response
from outlet.core.paginators import EstimatedCountPaginator

from . import selectors, services, stripe_gateway
from .forms import AdoptionForm
from .models import Campaign, Donation, Donor, DonorEmail, Gift, Refund, StripeEvent
from .templatetags.money import money_format

# Stripe's ids: a prefix and at least 14 letters and digits (payment intents have 24).
_COMPLETE_STRIPE_ID = re.compile(r"(pi|in)_[A-Za-z0-9]{14,}")


def search_words(search_term: str) -> list[str]:
    """The admin search's words as Django splits them: on spaces, a quoted phrase whole."""
    words = []
    for bit in smart_split(search_term):
        if bit.startswith(('"', "'")) and bit[0] == bit[-1]:
            bit = unescape_string_literal(bit)
        if bit:
            words.append(bit)
    return words


def donations_csv_response(queryset: QuerySet[Donation]) -> StreamingHttpResponse:
    stamp = timezone.localtime().strftime("%Y-%m-%d")
    return csv_stream_response(
        selectors.donation_csv_rows(queryset=queryset), filename=f"donations-{stamp}.csv"
    )


class SourceFilter(admin.SimpleListFilter):
    title = "source"
    parameter_name = "source"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        sources = (
            Donation.objects.exclude(source="")
            .order_by("source")
            .values_list("source", flat=True)
            .distinct()[:50]
        )
        return [("-", "Direct (no source)")] + [(s, s) for s in sources]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Donation]) -> QuerySet[Donation]:
        value = self.value()
        if value == "-":
            return queryset.filter(source="")
        if value:
            return queryset.filter(source=value)
        return queryset


class DisputedFilter(admin.SimpleListFilter):
    title = gettext_lazy("dispute")
    parameter_name = "disputed"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", _("Disputed"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Donation]) -> QuerySet[Donation]:
        if self.value() == "yes":
            return queryset.filter(disputed_at__isnull=False)
        return queryset


class RefundFilter(admin.SimpleListFilter):
    title = "refund"
    parameter_name = "refund"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("failed", "A refund failed")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Donation]) -> QuerySet[Donation]:
        if self.value() == "failed":
            return queryset.filter(
                refunds__status__in=[Refund.Status.FAILED, Refund.Status.CANCELED]
            ).distinct()
        return queryset


class RefundInline(admin.TabularInline):
    """Each refund Stripe made or tried, as it last reported it (a failed one says why)."""

    model = Refund
    extra = 0
    can_delete = False
    fields = ("stripe_refund_id", "amount_display", "status", "failure_reason", "failed_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=gettext_lazy("Amount"))
    def amount_display(self, refund: Refund) -> str:
        return money_format(refund.amount, refund.currency)


class MoneyHistoryAdmin(admin.ModelAdmin):
    """Donations, gifts, donors, Stripe events and donor emails are history: nobody deletes
    them here, not even a superuser (a deleted Stripe event would be applied again; a
    donor leaves by erasure, which keeps the money and drops the person)."""

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Donation)
class DonationAdmin(MoneyHistoryAdmin):
    change_list_template = "admin/donations/donation/change_list.html"
    list_display = [
        "id",
        "created_at",
        "donor",
        "amount_display",
        "frequency",
        "status",
        "disputed",
        "campaign",
        "source",
        "paid_at",
    ]
    list_filter = [
        "status",
        "frequency",
        "campaign",
        SourceFilter,
        DisputedFilter,
        RefundFilter,
        ("created_at", admin.DateFieldListFilter),
    ]
    search_fields = ["donor__email", "donor__name", "stripe_payment_intent_id", "stripe_invoice_id"]
    list_select_related = ["donor", "campaign"]
    # At 200,000 donations (docs/scale.md): counted by estimate, no date hierarchy (a
    # DISTINCT over every row; the created_at filter covers it), search through indexes.
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    actions = ["refund", "export_csv"]
    readonly_fields = [f.name for f in Donation._meta.get_fields() if getattr(f, "concrete", False)]
    inlines = [RefundInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Donation]:
        """Checkouts left before Stripe's charge step are not donations: listed only when
        their status is asked for (the Status filter's Pending or Abandoned checkout)."""
        queryset = super().get_queryset(request)
        if "status__exact" in request.GET or request.resolver_match is None:
            return queryset
        if request.resolver_match.url_name != "donations_donation_changelist":
            return queryset
        return queryset.exclude(selectors.CHECKOUT_UNFINISHED).exclude(
            status=Donation.Status.ABANDONED
        )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Donation], search_term: str
    ) -> tuple[QuerySet[Donation], bool]:
        """Django's search, each word through indexes: a complete Stripe id finds its
        donation exactly (unique index); a word starting pi_/in_ matches ids by prefix;
        any other word matches part of an id or the donations of donors whose address or
        name contains it (trigram indexes on the donors, then the donor index). Words are
        split and quotes honoured as Django does, every word must match."""
        term = search_term.strip()
        if not term:
            return queryset, False
        if _COMPLETE_STRIPE_ID.fullmatch(term):
            exact = queryset.filter(Q(stripe_payment_intent_id=term) | Q(stripe_invoice_id=term))
            if exact.exists():
                return exact, False
        for word in search_words(term):
            if word.lower().startswith(("pi_", "in_")):
                queryset = queryset.filter(
                    Q(stripe_payment_intent_id__istartswith=word)
                    | Q(stripe_invoice_id__istartswith=word)
                )
                continue
            donors = Donor.objects.filter(Q(email__icontains=word) | Q(name__icontains=word))
            queryset = queryset.filter(
                Q(donor__in=donors.values("pk"))
                | Q(stripe_payment_intent_id__icontains=word)
                | Q(stripe_invoice_id__icontains=word)
            )
        return queryset, False

    @admin.display(description=gettext_lazy("Amount"), ordering="amount")
    def amount_display(self, donation: Donation) -> str:
        return money_format(donation.amount, donation.currency)

    @admin.display(boolean=True, description=gettext_lazy("Disputed"))
    def disputed(self, donation: Donation) -> bool:
        return donation.disputed_at is not None

    def has_refund_permission(self, request: HttpRequest) -> bool:
        """Refunding moves money: it takes its own permission, not list access."""
        return request.user.has_perm("donations.refund_donation")

    @admin.action(
        description=gettext_lazy("Refund selected donations through Stripe"),
        permissions=["refund"],
    )
    def refund(self, request: HttpRequest, queryset: QuerySet[Donation]) -> None:
        asked = 0
        for donation in queryset:
            try:
                services.donation_refund(donation=donation)
                asked += 1
            except ValidationError as exc:
                self.message_user(request, " ".join(exc.messages), messages.WARNING)
            except stripe_gateway.StripeError as exc:
                self.message_user(
                    request,
                    _("Stripe refused the refund of #%(number)s: %(reason)s")
                    % {"number": donation.pk, "reason": exc.user_message},
                    messages.ERROR,
                )
        if asked:
            self.message_user(
                request,
                ngettext(
                    "Asked Stripe to refund %(count)d donation. It shows as refunded when "
                    "Stripe confirms it.",
                    "Asked Stripe to refund %(count)d donations. Each shows as refunded when "
                    "Stripe confirms it.",
                    asked,
                )
                % {"count": asked},
                messages.SUCCESS,
            )

    @admin.action(description=gettext_lazy("Export selected donations as CSV"))
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Donation]) -> Any:
        return donations_csv_response(queryset)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> Any:
        if request.GET.get("export") == "csv":
            if not self.has_view_permission(request):
                raise PermissionDenied
            query = request.GET.copy()
            del query["export"]
            request.GET = query  # type: ignore[assignment]
            changelist = self.get_changelist_instance(request)
            return donations_csv_response(changelist.get_queryset(request))
        totals, bars = selectors.donation_overview(months=12)
        peak = max((bar.total for bar in bars), default=0) or 1
        chart = []
        for index, bar in enumerate(bars):
            once_height = round(bar.once * 160 / peak)
            recurring_height = round(bar.recurring * 160 / peak)
            chart.append(
                {
                    "bar": bar,
                    "x": index * 56 + 40,
                    "once_height": once_height,
                    "once_y": 180 - once_height,
                    "recurring_height": recurring_height,
                    "recurring_y": 180 - once_height - recurring_height,
                }
            )
        extra = {
            "totals": totals,
            "chart": chart,
            "chart_peak": peak,
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context=extra)


class DonationInline(admin.TabularInline):
    model = Donation
    fields = ["created_at", "amount", "currency", "frequency", "status", "paid_at"]
    readonly_fields = ["created_at", "amount", "currency", "frequency", "status", "paid_at"]
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Gift)
class GiftAdmin(MoneyHistoryAdmin):
    change_list_template = "admin/donations/gift/change_list.html"
    list_display = [
        "id",
        "donor",
        "amount_display",
        "interval",
        "status",
        "created_at",
        "cancelled_at",
    ]
    list_filter = ["status", "interval", "campaign"]
    search_fields = ["donor__email", "stripe_subscription_id"]
    list_select_related = ["donor"]
    readonly_fields = [f.name for f in Gift._meta.get_fields() if getattr(f, "concrete", False)]
    inlines = [DonationInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Gift]:
        """A gift whose subscription was never made at Stripe (its checkout was left
        before the charge step) is listed only when its status is asked for."""
        queryset = super().get_queryset(request)
        match = request.resolver_match
        if "status__exact" in request.GET or match is None:
            return queryset
        if match.url_name != "donations_gift_changelist":
            return queryset
        return queryset.exclude(stripe_subscription_id=None)

    @admin.display(description=gettext_lazy("Amount"), ordering="amount")
    def amount_display(self, gift: Gift) -> str:
        return money_format(gift.amount, gift.currency)

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("adopt/", view(self.adopt_view), name="donations_gift_adopt"),
            *super().get_urls(),
        ]

    def adopt_view(self, request: HttpRequest) -> HttpResponse:
        """stripe_adopt from the admin: the form, then the report of the run (read-only at
        Stripe; a dry run writes nothing here either)."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        report = None
        error = ""
        form = AdoptionForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            try:
                report = services.subscriptions_adopt(
                    adoption_filter=services.adoption_filter_parse(
                        prices=form.ids(form.cleaned_data["prices"]),
                        products=form.ids(form.cleaned_data["products"]),
                        metadata=form.cleaned_data["metadata"],
                    ),
                    dry_run=form.cleaned_data["dry_run"],
                )
            except stripe_gateway.StripeError as exc:
                error = _(
                    "Stripe could not be read (%(error)s). Subscriptions adopted before "
                    "that stay adopted; run it again to continue."
                ) % {"error": type(exc).__name__}
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Adopt existing Stripe subscriptions"),
            "form": form,
            "report": report,
            "error": error,
        }
        return TemplateResponse(request, "admin/donations/gift/adopt.html", context)


@admin.register(Donor)
class DonorAdmin(LanguageFieldAdminMixin, MoneyHistoryAdmin):
    list_display = ["email", "name", "created_at"]
    search_fields = ["email", "name"]
    inlines = [DonationInline]

    def save_model(self, request: HttpRequest, obj: Donor, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and {"email", "name"} & set(form.changed_data):
            services.donor_stripe_sync_queue(donor_id=obj.pk)


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "goal_display", "raised_display", "deadline", "is_active"]
    list_filter = ["is_active"]
    prepopulated_fields = {"slug": ["name"]}
    search_fields = ["name"]

    @admin.display(description=gettext_lazy("Goal"))
    def goal_display(self, campaign: Campaign) -> str:
        return money_format(campaign.goal_amount, campaign.currency)

    @admin.display(description=gettext_lazy("Raised"))
    def raised_display(self, campaign: Campaign) -> str:
        return money_format(selectors.campaign_raised(campaign=campaign), campaign.currency)


@admin.register(StripeEvent)
class StripeEventAdmin(MoneyHistoryAdmin):
    list_display = ["event_id", "type", "received_at"]
    list_filter = ["type"]
    search_fields = ["event_id"]
    readonly_fields = ["event_id", "type", "received_at"]


@admin.register(DonorEmail)
class DonorEmailAdmin(MoneyHistoryAdmin):
    list_display = ["kind", "donor", "status", "created_at", "sent_at", "attempts"]
    list_filter = ["kind", "status"]
    search_fields = ["donor__email"]
    readonly_fields = [
        f.name for f in DonorEmail._meta.get_fields() if getattr(f, "concrete", False)
    ]
