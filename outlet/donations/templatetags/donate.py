"""`{% donate_messages %}`: donate.js's words, translated here and handed to the script as
JSON (no inline script, so the CSP stays strict)."""

from __future__ import annotations

from django import template
from django.utils.html import json_script
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from ..models import Donation
from ..outcome import donation_outcome, donation_retry_url

register = template.Library()


@register.simple_tag
def donate_messages() -> SafeString:
    messages = {
        "declined": _(
            "Your card was declined. Please check the details or try another card; "
            "nothing was charged."
        ),
        "auth_failed": _(
            "Your bank could not confirm this payment. Please try again or use another "
            "card; nothing was charged."
        ),
        "malformed": _(
            "The card details could not be read. Please check the card number, the expiry "
            "month and year and the security code, then try again; nothing was charged."
        ),
        "network": _(
            "We could not reach the payment service. Please check your connection and try "
            "again; nothing was charged."
        ),
        "refused": _(
            "This page's security check failed, so nothing was charged. Please reload the "
            "page and try again."
        ),
        "uncertain": _(
            "We could not confirm your payment yet. Please do not start a new donation: we "
            "are checking again. If it went through, your receipt is on its way by email."
        ),
        "number": _("The card number looks wrong. Please check it."),
        "expired": _("This card has expired. Please use another card."),
        "cvc": _("The security code looks wrong. Please check it."),
        "no_card_form": _(
            "The card form could not load. Please check your connection or disable a "
            "blocker for this page, then reload."
        ),
        "finishing": _("Thank you! Finishing up…"),
        "check_again": _("Check again"),
        "checking": _("Checking…"),
        "processing": _("Processing…"),
        "a_little": pgettext("an amount not yet known", "a little"),
        # %(amount)s is the total, formatted by the script in the page's language.
        "give": _("Give %(amount)s"),
        "give_month": _("Give %(amount)s monthly"),
        "give_year": _("Give %(amount)s yearly"),
    }
    return json_script(messages, "donate-messages")


@register.simple_tag
def donation_outcome_of(donation: Donation) -> str:
    """`{% donation_outcome_of donation as outcome %}`: succeeded, processing or failed."""
    return donation_outcome(donation=donation)


@register.simple_tag
def donation_retry_path(donation: Donation) -> str:
    """The donate page prefilled with this gift's amount and frequency."""
    return donation_retry_url(donation=donation)
