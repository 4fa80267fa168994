"""Which language a page or an email is in (issue 24), and how a language is named to
the outside world.

A page's language comes from its address only: the default language (the first of
SITE_LANGUAGES) is unprefixed, every other configured language lives under its prefix
(/en/...). Never a cookie or Accept-Language, so one address is one page and the page
cache and a shared cache in front can hold it without a Vary on language.

An email's language is the recipient's (`recipient_language`): a subscriber's or donor's
`language`, a newsletter's for its issues, else the site's default. Renderers wrap their
work in `translation.override(recipient_language(obj=...))`.

The naming helpers spell a Django language code (``pt-br``) the way each consumer wants
it: BCP 47 for browsers, Stripe Elements, JSON-LD and feeds (``pt-BR``),
language_TERRITORY for OpenGraph (``pt_BR``, ``es_ES``: Facebook wants a territory, so a
bare language gets its most likely one from Babel's CLDR data).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

from babel import Locale
from babel.core import get_global
from django.conf import settings
from django.conf.locale import LANG_INFO
from django.db.models import Q
from django.http import HttpRequest, HttpResponseBase
from django.urls import LocalePrefixPattern, URLPattern, URLResolver
from django.utils import translation
from django.utils.translation import get_language, to_locale


def site_languages() -> list[str]:
    """The configured language codes, the default first."""
    return [code for code, _name in settings.LANGUAGES]


def is_multilingual() -> bool:
    return len(settings.LANGUAGES) > 1


def language_valid(code: str | None) -> str:
    """`code` if it is a configured language, else the site's default.

    Blank (content older than the language field, imports) means the default, so
    changing SITE_LANGUAGE needs no migration.
    """
    code = (code or "").strip().lower().replace("_", "-")
    return code if code in site_languages() else settings.LANGUAGE_CODE


def language_from_path(path: str) -> str:
    """The language of the page at `path`: its configured prefix, else the default."""
    first = path.lstrip("/").split("/", 1)[0].lower()
    if first and first != settings.LANGUAGE_CODE and first in site_languages():
        return first
    return settings.LANGUAGE_CODE


def active_language() -> str:
    """The active language's Django code, or the site's when none is active."""
    return get_language() or settings.LANGUAGE_CODE


def path_without_language(path: str) -> str:
    """`path` without its language prefix (/en/donate/ -> /donate/), for rules that name
    a page by its path whatever its language."""
    if language_from_path(path) == settings.LANGUAGE_CODE:
        return path
    rest = path.lstrip("/").split("/", 1)
    return "/" + (rest[1] if len(rest) > 1 else "")


def recipient_language(*, obj: object = None) -> str:
    """The language an email to (or about) `obj` is written in.

    The one place this is chosen: a subscriber's, donor's or newsletter's `language`
    when it is one the site still publishes in, else the site's default. Objects that
    lead to a person (a donation's donor, an issue's newsletter, a subscription's
    subscriber) are followed; a reader, known by address only, has the language of the
    subscriber or donor with that address.
    """
    if obj is None:
        return settings.LANGUAGE_CODE
    for attribute in ("language", "donor", "subscriber", "newsletter"):
        value = getattr(obj, attribute, None)
        if attribute == "language" and isinstance(value, str):
            return language_valid(value)
        if value is not None and not isinstance(value, str):
            return recipient_language(obj=value)
    email = getattr(obj, "email", None)
    if isinstance(email, str) and email and is_multilingual():
        return _language_of_address(email)
    return settings.LANGUAGE_CODE


def _language_of_address(email: str) -> str:
    """A reader's language (readers have an address, not a language of their own): the
    one they keep as a confirmed subscriber, else as a donor, else as a subscriber who
    never confirmed (anyone can type an address into a sign-up box: such a row must not
    outrank the language the address's owner gave in), else the default."""
    from outlet.donations.models import Donor
    from outlet.newsletters.models import Subscriber

    address = email.strip()
    subscribers = Subscriber.objects.filter(email__iexact=address)
    for rows in (
        subscribers.filter(confirmed_at__isnull=False),
        Donor.objects.filter(email__iexact=address),
        subscribers.filter(confirmed_at__isnull=True),
    ):
        language = rows.values_list("language", flat=True).first()
        if language:
            return language_valid(language)
    return settings.LANGUAGE_CODE


class UrlLanguageMiddleware:
    """Activate the language of the request's address, for the request only.

    Django's LocaleMiddleware would also read a cookie and Accept-Language, redirect,
    and add `Vary: Accept-Language`; none of which a cached page may depend on.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        language = language_from_path(request.path_info)
        with translation.override(language):
            request.LANGUAGE_CODE = language
            response = self.get_response(request)
        response.headers.setdefault("Content-Language", language)
        return response


class SiteLanguagePrefixPattern(LocalePrefixPattern):
    """The /en/ of reader pages: the active language's prefix, none for the default.

    Unlike Django's, a language the site does not publish in (a test or an email
    rendered under translation.override) gets no prefix rather than an address that
    would answer 404.
    """

    @property
    def language_prefix(self) -> str:
        code = translation.get_language() or settings.LANGUAGE_CODE
        if code == settings.LANGUAGE_CODE or code not in site_languages():
            return ""
        return f"{code}/"


def language_patterns(*urls: URLPattern | URLResolver) -> list[URLResolver]:
    """Reader pages: unprefixed in the default language, under /<code>/ in the others."""
    return [URLResolver(SiteLanguagePrefixPattern(prefix_default_language=False), list(urls))]


def language_q(code: str | None) -> Q:
    """Rows (with a `language` field) in `code`; blank counts as the default language."""
    code = language_valid(code)
    if code == settings.LANGUAGE_CODE:
        return Q(language__in=["", code])
    return Q(language=code)


def language_versions(obj: Any, translations: Iterable[Any]) -> dict[str, str]:
    """{language code: path} of a piece and its translations, in the site's order.

    `obj` and each translation have `language_code` and `get_absolute_url()`; a
    translation in a language the site no longer publishes in is left out.
    """
    found = {obj.language_code: obj.get_absolute_url()}
    for translation_ in translations:
        found.setdefault(translation_.language_code, translation_.get_absolute_url())
    return {code: found[code] for code in site_languages() if code in found}


def language_choices_for_readers() -> list[tuple[str, str]]:
    """(code, name in that language) of each configured language; none on a site with one."""
    if not is_multilingual():
        return []
    return [(code, LANG_INFO[code]["name_local"]) for code in site_languages()]


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
