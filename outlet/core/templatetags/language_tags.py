"""hreflang alternates and the language switcher of a bilingual site (core/language.py).

Both come from one list: for an article or page, its translations (the view puts them
in `language_versions`); for any other page (home, a section, search), the same page
in each language. Nothing is shown on a site with one language.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.conf import settings
from django.conf.locale import LANG_INFO
from django.urls import reverse, translate_url
from django.utils import translation

from outlet.core.language import is_multilingual, site_languages
from outlet.core.site_url import site_url_absolute

register = template.Library()


def _versions(context: template.Context) -> dict[str, str]:
    versions = context.get("language_versions")
    if versions is not None:
        return versions
    request = context.get("request")
    if request is None:
        return {}
    versions = {code: translate_url(request.path, code) for code in site_languages()}
    # An address no view answers (a 404) translates to itself: it has no versions.
    return versions if len(set(versions.values())) == len(versions) else {}


@register.inclusion_tag("includes/language_alternates.html", takes_context=True)
def language_alternates(context: template.Context) -> dict[str, Any]:
    """<link rel="alternate" hreflang> for each language version, and x-default."""
    if not is_multilingual():
        return {"alternates": []}
    versions = _versions(context)
    if len(versions) < 2:
        # A piece with no translation has no alternates to declare.
        return {"alternates": []}
    alternates = [
        {"hreflang": code, "href": site_url_absolute(path)} for code, path in versions.items()
    ]
    default = versions.get(settings.LANGUAGE_CODE) or next(iter(versions.values()))
    alternates.append({"hreflang": "x-default", "href": site_url_absolute(default)})
    return {"alternates": alternates}


@register.inclusion_tag("includes/language_switcher.html", takes_context=True)
def language_switcher(context: template.Context) -> dict[str, Any]:
    """A link to each other language: to this page's translation, else that language's home."""
    if not is_multilingual():
        return {"languages": []}
    versions = _versions(context)
    current = translation.get_language()
    languages = []
    for code in site_languages():
        if code in versions:
            url = versions[code]
        else:
            with translation.override(code):
                url = reverse("articles:home")
        languages.append(
            {
                "code": code,
                "name": LANG_INFO[code]["name_local"],
                "url": url,
                "current": code == current,
                "translated": code in versions,
            }
        )
    return {"languages": languages}
