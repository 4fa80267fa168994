"""The readers' own emails: a sign-in link, the link that confirms a new address, and the
note to the old address when a move is asked for and when it happens. All transactional,
one recipient, HTML and plain text side by side."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from outlet.core.language import recipient_language
from outlet.newsletters.bounces.addresses import return_path_apply

from .models import Reader


def _message(*, to: str, subject: str, template: str, context: dict) -> EmailMultiAlternatives:
    """Rendered in the language the caller chose with `translation.override`."""
    context = {
        "OUTLET_NAME": settings.OUTLET_NAME,
        "OUTLET_POSTAL_ADDRESS": settings.OUTLET_POSTAL_ADDRESS,
        "SITE_URL": settings.SITE_URL,
        "valid_minutes": max(1, settings.READER_SIGN_IN_MAX_AGE // 60),
        **context,
    }
    message = EmailMultiAlternatives(
        subject=subject,
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
    with translation.override(recipient_language(obj=reader)):
        return _sign_in_email(reader=reader, token=token)


def _sign_in_email(*, reader: Reader, token: str) -> EmailMultiAlternatives:
    return _message(
        to=reader.email,
        subject=f"Your sign-in link for {settings.OUTLET_NAME}",
        template="sign_in",
        context={"url": settings.SITE_URL + reverse("readers:sign-in", args=[token])},
    )


def email_change_email(*, reader: Reader, email: str, token: str) -> EmailMultiAlternatives:
    with translation.override(recipient_language(obj=reader)):
        return _email_change_email(reader=reader, email=email, token=token)


def _email_change_email(*, reader: Reader, email: str, token: str) -> EmailMultiAlternatives:
    return _message(
        to=email,
        subject=f"Confirm your new address for {settings.OUTLET_NAME}",
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
    with translation.override(recipient_language(obj=_Address(old_email))):
        return _email_change_notice_email(old_email=old_email, new_email=new_email, done=done)


class _Address:
    """Whoever holds `email` (a reader, subscriber or donor), for recipient_language."""

    def __init__(self, email: str) -> None:
        self.email = email


def _email_change_notice_email(
    *, old_email: str, new_email: str, done: bool
) -> EmailMultiAlternatives:
    subject = (
        f"Your {settings.OUTLET_NAME} account moved to another address"
        if done
        else f"Your {settings.OUTLET_NAME} account: a change of address was asked for"
    )
    return _message(
        to=old_email,
        subject=subject,
        template="email_changed" if done else "email_change_asked",
        context={
            "new_email": new_email,
            "account_url": settings.SITE_URL + reverse("readers:account"),
            "valid_hours": max(1, settings.READER_EMAIL_CHANGE_MAX_AGE // 3600),
        },
    )
