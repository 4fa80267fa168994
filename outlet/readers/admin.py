"""Editors' view of a reader: their donor and subscriber records joined by address, and a
button that sends them a sign-in link. Reader rows exist for addresses that signed in;
"Add reader" with any address of a donor or subscriber makes one."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from outlet.core.addresses import email_normalise
from outlet.donations.models import Donation, Donor, Gift
from outlet.newsletters.models import Subscriber

from . import selectors, services
from .models import Reader


class ReaderForm(forms.ModelForm):
    class Meta:
        model = Reader
        fields = ["email"]

    def clean_email(self) -> str:
        email = email_normalise(self.cleaned_data["email"])
        if not selectors.reader_address_known(email=email):
            raise forms.ValidationError(
                _("No one who gave or confirmed a subscription has this address.")
            )
        return email


@admin.register(Reader)
class ReaderAdmin(admin.ModelAdmin):
    form = ReaderForm
    list_display = ["email", "created_at", "signed_in_at"]
    search_fields = ["email"]
    readonly_fields = ["created_at", "signed_in_at", "session_epoch"]
    actions = ["send_sign_in_link"]
    change_form_template = "admin/readers/reader/change_form.html"

    def get_fields(self, request: HttpRequest, obj: Reader | None = None) -> Any:
        if obj is None:
            return ["email"]
        return ["email", "created_at", "signed_in_at", "session_epoch"]

    def get_readonly_fields(self, request: HttpRequest, obj: Reader | None = None) -> Any:
        if obj is None:
            return []
        return ["email", *self.readonly_fields]  # the reader changes it, by a confirmed link

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        reader = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if reader is not None:
            context["records"] = self._records(request, reader)
        return super().change_view(request, object_id, form_url, context)

    def _may_view(self, request: HttpRequest, model: type[models.Model]) -> bool:
        model_admin = self.admin_site._registry.get(model)
        return bool(model_admin and model_admin.has_view_permission(request))

    def _records(self, request: HttpRequest, reader: Reader) -> SafeString:
        """The reader's donor and subscriber records, each part shown only to staff who may
        view those records in their own admin (a reader's page is no back door to them)."""
        account = selectors.reader_account(reader=reader)
        may = {
            "donor": self._may_view(request, Donor),
            "gifts": self._may_view(request, Gift),
            "donations": self._may_view(request, Donation),
            "subscriber": self._may_view(request, Subscriber),
        }
        context: dict[str, Any] = {
            "account": account,
            "may": may,
            "donor_url": (
                reverse("admin:donations_donor_change", args=[account.donor.pk])
                if account.donor and may["donor"]
                else ""
            ),
            "subscriber_url": (
                account.subscriber.get_admin_url()
                if account.subscriber and may["subscriber"]
                else ""
            ),
        }
        return mark_safe(render_to_string("admin/readers/reader/records.html", context))  # noqa: S308 (a template, autoescaped)

    @admin.action(description=gettext_lazy("Send a sign-in link"), permissions=["change"])
    def send_sign_in_link(self, request: HttpRequest, queryset: QuerySet[Reader]) -> None:
        for reader in queryset:
            services.reader_sign_in_link_send_for_staff(reader=reader)
        count = queryset.count()
        self.message_user(
            request,
            ngettext(
                "Sign-in links are on their way to %(count)d reader.",
                "Sign-in links are on their way to %(count)d readers.",
                count,
            )
            % {"count": count},
            messages.SUCCESS,
        )

    def response_change(self, request: HttpRequest, obj: Reader) -> HttpResponse:
        if "_send_sign_in_link" in request.POST:
            services.reader_sign_in_link_send_for_staff(reader=obj)
            self.message_user(
                request, _("A sign-in link is on its way to %(email)s.") % {"email": obj.email}
            )
            return self.response_post_save_change(request, obj)
        return super().response_change(request, obj)
