"""Which language a reader gets, and how that language is named to the outside world.

`recipient_language` is the one place where the language of an email is chosen: today
the site's language (SITE_LANGUAGE, Django's LANGUAGE_CODE); bilingual sites (issue 24)
will give subscribers and donors a language of their own, read from `obj`, and every
sender already asks here. Renderers wrap their work in
`translation.override(recipient_language(obj=...))`.

The other helpers spell a Django language code (``pt-br``) the way each consumer wants
it: BCP 47 for browsers, Stripe Elements, JSON-LD and feeds (``pt-BR``),
language_TERRITORY for OpenGraph (``pt_BR``, ``es_ES``: Facebook wants a territory, so a
bare language gets its most likely one from Babel's CLDR data).
"""

from __future__ import annotations

from functools import lru_cache

from babel import Locale
from babel.core import get_global
from django.conf import settings
from django.utils.translation import get_language, to_locale


def recipient_language(*, obj: object | None = None) -> str:
    """The language code to render an email to `obj`'s person in (a Donor, a Reader, a
    Subscriber, or None for the editors)."""
    return settings.LANGUAGE_CODE


def active_language() -> str:
    """The active language's Django code, or the site's when none is active."""
    return get_language() or settings.LANGUAGE_CODE


def language_tag(language: str | None = None) -> str:
    """A Django language code as a BCP 47 tag ("pt-br" -> "pt-BR", "es" -> "es",
    "zh-hans" -> "zh-Hans"); the active language when none is given."""
    return _language_tag(language or active_language())


@lru_cache(maxsize=32)
def _language_tag(code: str) -> str:
    return to_locale(code).replace("_", "-")


def news_sitemap_language(code: str) -> str:
    """Google News' <news:language>: the ISO 639 code (``pt-br`` → ``pt``), except the two
    Chinese scripts, which it spells ``zh-cn`` and ``zh-tw``."""
    if code.startswith("zh"):
        return "zh-tw" if code in ("zh-hant", "zh-tw", "zh-hk") else "zh-cn"
    return code.split("-")[0]


@lru_cache(maxsize=32)
def open_graph_locale(code: str) -> str:
    """OpenGraph's og:locale for a Django code: ``pt-br`` → ``pt_BR``, ``es`` → ``es_ES``."""
    locale = Locale.parse(to_locale(code))
    territory = locale.territory
    if not territory:
        likely = get_global("likely_subtags").get(locale.language, "")
        territory = likely.split("_")[-1] if "_" in likely else ""
    return f"{locale.language}_{territory}" if territory else locale.language
