"""Which language a reader's email goes out in: the one place that chooses it.

For now every email is in the site's language (SITE_LANGUAGE, Django's LANGUAGE_CODE).
Bilingual sites (issue 24) will give subscribers and donors a language of their own; this
function will then read it from `obj`, and every sender already asks here."""

from __future__ import annotations

from django.conf import settings
from django.utils import translation


def recipient_language(*, obj: object | None = None) -> str:
    """The language code to render an email to `obj`'s person in (a Donor, a Reader, a
    Subscriber, or None for the editors)."""
    return settings.LANGUAGE_CODE


def language_tag(language: str | None = None) -> str:
    """A Django language code as the BCP 47 tag browsers and Stripe Elements take
    ("pt-br" -> "pt-BR", "es" -> "es"); the active language when none is given."""
    code = language or translation.get_language() or settings.LANGUAGE_CODE
    base, _sep, region = code.partition("-")
    return f"{base}-{region.upper()}" if region else base
