"""The audience's own emails: confirmation and a fresh preferences link.

Both are transactional (one recipient, sent on the "mail" queue) and are
built here only; HTML is rendered from a template and its CSS inlined, with
a plain-text part beside it.
"""

from __future__ import annotations

import css_inline
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext

from outlet.core.language import recipient_language
from outlet.newsletters.bounces.addresses import return_path_apply
from outlet.newsletters.models import Subscriber
from outlet.newsletters.tokens import confirm_url, preferences_url

_inliner = css_inline.CSSInliner(keep_style_tags=False, load_remote_stylesheets=False)


def _message(
    *, subscriber: Subscriber, subject: str, template: str, context: dict
) -> EmailMultiAlternatives:
    context = {
        "OUTLET_NAME": settings.OUTLET_NAME,
        "OUTLET_POSTAL_ADDRESS": settings.OUTLET_POSTAL_ADDRESS,
        "SITE_URL": settings.SITE_URL,
        "subject": subject,
        **context,
    }
    text = render_to_string(f"emails/newsletters/{template}.txt", context)
    html = _inliner.inline(render_to_string(f"emails/newsletters/{template}.html", context))
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[subscriber.email],
        headers={"Auto-Submitted": "auto-generated"},
    )
    message.attach_alternative(html, "text/html")
    return return_path_apply(message)  # its bounces come back to us (BOUNCE_DOMAIN)


def confirmation_email(subscriber: Subscriber) -> EmailMultiAlternatives:
    newsletters = [s.newsletter for s in subscriber.subscriptions.select_related("newsletter")]
    with translation.override(recipient_language(obj=subscriber)):
        return _confirmation_email(subscriber, newsletters)


def _confirmation_email(subscriber: Subscriber, newsletters: list) -> EmailMultiAlternatives:
    return _message(
        subscriber=subscriber,
        subject=gettext("Confirm your subscription to %(name)s") % {"name": settings.OUTLET_NAME},
        template="confirm",
        context={
            "confirm_url": confirm_url(subscriber),
            "newsletters": newsletters,
            "valid_days": max(1, settings.NEWSLETTER_CONFIRM_MAX_AGE // 86400),
        },
    )


def preferences_link_email(subscriber: Subscriber) -> EmailMultiAlternatives:
    with translation.override(recipient_language(obj=subscriber)):
        return _message(
            subscriber=subscriber,
            subject=gettext("Your %(name)s newsletter settings") % {"name": settings.OUTLET_NAME},
            template="preferences_link",
            context={"preferences_url": preferences_url(subscriber)},
        )
