"""Every email a donor gets, built in one place: HTML and plain text side by side."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from outlet.core.language import recipient_language
from outlet.newsletters.bounces.addresses import return_path_apply

from . import selectors
from .models import Donation, DonorEmail, Refund

SUBJECTS: dict[str, str | Promise] = {
    DonorEmail.Kind.RECEIPT: _("Your receipt: thank you for supporting %(outlet)s"),
    DonorEmail.Kind.PAST_DUE: _("Your gift to %(outlet)s could not be renewed"),
    DonorEmail.Kind.GIFT_ENDED: _("Your recurring gift to %(outlet)s has ended"),
    DonorEmail.Kind.GIFT_CANCELLED: _("You cancelled your recurring gift to %(outlet)s"),
    DonorEmail.Kind.AMOUNT_CHANGED: _("Your recurring gift to %(outlet)s has a new amount"),
    DonorEmail.Kind.CARD_UPDATED: _("Your card for %(outlet)s has been updated"),
    DonorEmail.Kind.PAYMENT_ACTION_REQUIRED: _(
        "Please confirm your gift to %(outlet)s with your bank"
    ),
    DonorEmail.Kind.PAYMENT_FAILED: _("Your gift to %(outlet)s did not go through"),
}


def donor_email_message(email: DonorEmail) -> EmailMultiAlternatives:
    """The message for an owed email, in the donor's language. It links to the reader
    account (/account/), which asks for an emailed sign-in link: a forwarded receipt lets
    nobody act on the gifts. (Sign-in links themselves are sent by outlet/readers.)"""
    language = recipient_language(obj=email.donor)
    with translation.override(language):
        return _donor_email_message(email, language=language)


def _donor_email_message(email: DonorEmail, *, language: str) -> EmailMultiAlternatives:
    manage_url = reverse("readers:account")
    context: dict[str, Any] = {
        "email": email,
        "donor": email.donor,
        "donation": email.donation,
        "gift": email.gift,
        "manage_url": settings.SITE_URL + manage_url,
        "action_url": email.action_url or settings.SITE_URL + manage_url,
        "OUTLET_NAME": settings.OUTLET_NAME,
        "OUTLET_POSTAL_ADDRESS": settings.OUTLET_POSTAL_ADDRESS,
        "SITE_URL": settings.SITE_URL,
        "tax_statement": settings.DONATION_TAX_STATEMENT,
    }
    gift = email.gift or (email.donation.gift if email.donation else None)
    if email.kind == DonorEmail.Kind.RECEIPT and email.donation and gift is not None:
        # A recurring receipt says when the next payment is and how to stop it.
        context["next_charge"] = selectors.gift_next_charge(
            gift=gift, after=email.donation.paid_at or email.donation.created_at
        )
        context["gift_url"] = f"{settings.SITE_URL}{manage_url}#gift-{gift.pk}"
    if email.kind == DonorEmail.Kind.PAYMENT_FAILED and email.donation:
        context["retry_url"] = settings.SITE_URL + selectors.donation_retry_url(
            donation=email.donation
        )
    template = f"emails/donations/{email.kind}"
    message = EmailMultiAlternatives(
        subject=str(SUBJECTS[DonorEmail.Kind(email.kind)]) % {"outlet": settings.OUTLET_NAME},
        body=render_to_string(f"{template}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[email.donor.email or ""],  # an erased donor's mail is never sent (donor_emails)
        headers={
            "X-Outlet-Email": f"donations-{email.kind}-{email.pk}",
            "Content-Language": language,
        },
    )
    message.attach_alternative(render_to_string(f"{template}.html", context), "text/html")
    return return_path_apply(message)  # its bounces come back to us (BOUNCE_DOMAIN)


def dispute_opened_message(*, donation: Donation, recipients: list[str]) -> EmailMultiAlternatives:
    """To the editors: a donation is disputed; what, how much, and where to look."""
    with translation.override(recipient_language()):
        return _dispute_opened_message(donation=donation, recipients=recipients)


def _dispute_opened_message(*, donation: Donation, recipients: list[str]) -> EmailMultiAlternatives:
    context = {
        "donation": donation,
        "admin_url": settings.SITE_URL + donation.get_absolute_url(),
        "OUTLET_NAME": settings.OUTLET_NAME,
    }
    message = EmailMultiAlternatives(
        subject=gettext("A donation to %(outlet)s is disputed (#%(number)s)")
        % {"outlet": settings.OUTLET_NAME, "number": donation.pk},
        body=render_to_string("emails/donations/dispute_opened.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=recipients,
        headers={"X-Outlet-Email": f"donations-dispute-{donation.pk}"},
    )
    message.attach_alternative(
        render_to_string("emails/donations/dispute_opened.html", context), "text/html"
    )
    return message


def refund_failed_message(*, refund: Refund, recipients: list[str]) -> EmailMultiAlternatives:
    """To the editors: a refund failed, the money counts again, and they may refund again."""
    with translation.override(recipient_language()):
        return _refund_failed_message(refund=refund, recipients=recipients)


def _refund_failed_message(*, refund: Refund, recipients: list[str]) -> EmailMultiAlternatives:
    donation = refund.donation
    context = {
        "refund": refund,
        "donation": donation,
        "admin_url": settings.SITE_URL + donation.get_absolute_url(),
        "OUTLET_NAME": settings.OUTLET_NAME,
    }
    message = EmailMultiAlternatives(
        subject=gettext("A refund of a donation to %(outlet)s failed (#%(number)s)")
        % {"outlet": settings.OUTLET_NAME, "number": donation.pk},
        body=render_to_string("emails/donations/refund_failed.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=recipients,
        headers={"X-Outlet-Email": f"donations-refund-failed-{refund.pk}"},
    )
    message.attach_alternative(
        render_to_string("emails/donations/refund_failed.html", context), "text/html"
    )
    return message
