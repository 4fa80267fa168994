"""The readers' own emails: a sign-in link, the link that confirms a new address, and the
note to the old address when a move is asked for and when it happens. All transactional,
one recipient, HTML and plain text side by side."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext, gettext_noop

from outlet.core.language import recipient_language
from outlet.newsletters.bounces.addresses import return_path_apply

from .models import Reader


def _message(
    *, to: str, subject: str, template: str, context: dict, reader: object = None
) -> EmailMultiAlternatives:
    """The email, in the language recipient_language chooses for `reader` (a Reader, or
    an `_Address` for a note to an address a reader is leaving); `subject` is an English
    msgid (gettext_noop), translated here and given the outlet's name."""
    with translation.override(recipient_language(obj=reader)):
        return _message_render(to=to, subject=subject, template=template, context=context)


def _message_render(
    *, to: str, subject: str, template: str, context: dict
) -> EmailMultiAlternatives:
    context = {
        "OUTLET_NAME": settings.OUTLET_NAME,
        "OUTLET_POSTAL_ADDRESS": settings.OUTLET_POSTAL_ADDRESS,
        "SITE_URL": settings.SITE_URL,
        "valid_minutes": max(1, settings.READER_SIGN_IN_MAX_AGE // 60),
        **context,
    }
    message = EmailMultiAlternatives(
        subject=gettext(subject) % {"outlet": settings.OUTLET_NAME},
        body=render_to_string(f"emails/readers/{template}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        headers={
            "Auto-Submitted": "auto-generated",
            "X-Outlet-Email": f"readers-{template}",
            "Content-Language": translation.get_language() or settings.LANGUAGE_CODE,
        },
    )
    message.attach_alternative(
        render_to_string(f"emails/readers/{template}.html", context), "text/html"
    )
    return return_path_apply(message)  # its bounces come back to us (BOUNCE_DOMAIN)


def sign_in_email(*, reader: Reader, token: str) -> EmailMultiAlternatives:
    return _message(
        to=reader.email,
        reader=reader,
        subject=gettext_noop("Your sign-in link for %(outlet)s"),
        template="sign_in",
        context={"url": settings.SITE_URL + reverse("readers:sign-in", args=[token])},
    )


def email_change_email(*, reader: Reader, email: str, token: str) -> EmailMultiAlternatives:
    return _message(
        to=email,
        reader=reader,
        subject=gettext_noop("Confirm your new address for %(outlet)s"),
        template="email_change",
        context={
            "url": settings.SITE_URL + reverse("readers:email-confirm", args=[token]),
            "valid_hours": max(1, settings.READER_EMAIL_CHANGE_MAX_AGE // 3600),
        },
    )


def email_change_notice_email(
    *, old_email: str, new_email: str, done: bool
) -> EmailMultiAlternatives:
    """To the old address. Replies go to DEFAULT_FROM_EMAIL: staff read them."""
    subject = (
        gettext_noop("Your %(outlet)s account moved to another address")
        if done
        else gettext_noop("Your %(outlet)s account: a change of address was asked for")
    )
    return _message(
        to=old_email,
        reader=_Address(old_email),
        subject=subject,
        template="email_changed" if done else "email_change_asked",
        context={
            "new_email": new_email,
            "account_url": settings.SITE_URL + reverse("readers:account"),
            "valid_hours": max(1, settings.READER_EMAIL_CHANGE_MAX_AGE // 3600),
        },
    )


class _Address:
    """Whoever holds `email` (a reader, subscriber or donor), for recipient_language."""

    def __init__(self, email: str) -> None:
        self.email = email
