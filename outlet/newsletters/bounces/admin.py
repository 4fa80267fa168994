"""The bounce mailbox in the admin: what came back, by outcome, read-only.

The list's filter counts each outcome (forged and not understood included); a message not
understood shows its text for a person to read.
"""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from outlet.newsletters.bounces.models import BounceMessage


@admin.register(BounceMessage)
class BounceMessageAdmin(admin.ModelAdmin):
    list_display = ("received_at", "outcome", "source", "detail", "delivery")
    list_filter = ("outcome", "source")
    date_hierarchy = "received_at"
    fields = ("received_at", "outcome", "source", "message_id", "detail", "delivery", "text")
    readonly_fields = fields
    list_select_related = ("delivery",)
    show_facets = admin.ShowFacets.ALWAYS  # each outcome's count beside its filter

    @admin.display(description=_("message as received"))
    def text(self, message: BounceMessage) -> str:
        raw = bytes(message.raw or b"")
        return raw[:20000].decode("utf-8", "replace") if raw else "—"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
