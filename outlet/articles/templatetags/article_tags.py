from __future__ import annotations

import re
from functools import lru_cache

from babel import Locale
from django import template
from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models.fields.files import FieldFile
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import to_locale

from outlet.articles.images import (
    MODERN_FORMATS,
    RENDITION_WIDTHS,
    rendition_for_display,
    rendition_format_name,
    rendition_name,
    srcset,
    srcset_in_format,
)
from outlet.articles.metadata import absolute
from outlet.core.language import active_language

register = template.Library()

_IMG = re.compile(r"<img\b([^>]*)>", re.IGNORECASE)
_SRC = re.compile(r'\bsrc="([^"]+)"')
BODY_SIZES = "(max-width: 760px) 100vw, 720px"


@register.simple_tag
def image_srcset(field_file: FieldFile, width: int | None) -> str:
    return srcset(field_file, width)


@register.simple_tag
def image_sources(field_file: FieldFile, width: int | None, sizes: str) -> SafeString:
    """<source> elements for a <picture>: AVIF, then WebP, for browsers that take them
    (the <img> after them keeps the JPEG srcset for the rest)."""
    return format_html_join(
        "",
        '<source type="{}" srcset="{}" sizes="{}">',
        (
            (content_type, candidates, sizes)
            for _format, extension, content_type, _options in MODERN_FORMATS
            if (candidates := srcset_in_format(field_file, width, extension))
        ),
    )


@register.simple_tag
def email_image(field_file: FieldFile, width: int | None, display_width: int) -> dict[str, str]:
    """Absolute `src` and `srcset` for an image shown `display_width` pixels wide in an
    email: a rendition of about that width, and a 2x one where the client takes srcset."""
    single, double = rendition_for_display(field_file, width, display_width)
    if not single:
        return {"src": "", "srcset": ""}
    src = absolute(single)
    return {"src": src, "srcset": f"{src} 1x, {absolute(double)} 2x" if double else ""}


def _responsive_img(match: re.Match[str]) -> str:
    """An uploaded image with its renditions: a JPEG srcset on the <img>, and AVIF and
    WebP <source>s around it in a <picture> where the upload has them."""
    attributes = match.group(1)
    extra = ' loading="lazy" decoding="async"'
    sources = ""
    src = _SRC.search(attributes)
    if src and src.group(1).startswith(settings.MEDIA_URL):
        name = src.group(1).removeprefix(settings.MEDIA_URL)
        widths = [w for w in RENDITION_WIDTHS if default_storage.exists(rendition_name(name, w))]
        if widths:
            candidates = [f"{default_storage.url(rendition_name(name, w))} {w}w" for w in widths]
            extra += f' srcset="{escape(", ".join(candidates))}" sizes="{BODY_SIZES}"'
            for _format, extension, content_type, _options in MODERN_FORMATS:
                # Written together with the JPEGs: the narrowest one stands for the rest.
                if not default_storage.exists(rendition_format_name(name, widths[0], extension)):
                    continue
                modern = ", ".join(
                    f"{default_storage.url(rendition_format_name(name, w, extension))} {w}w"
                    for w in widths
                )
                sources += (
                    f'<source type="{content_type}" srcset="{escape(modern)}" sizes="{BODY_SIZES}">'
                )
    img = f"<img{attributes.rstrip('/ ')}{extra}>"
    return f"<picture>{sources}{img}</picture>" if sources else img


@register.filter
def responsive_body(body: str) -> SafeString:
    """The (already sanitised) body with lazy-loading images and srcset for uploads."""
    return mark_safe(_IMG.sub(_responsive_img, body or ""))  # noqa: S308 (sanitised on save)


@register.filter
def byline_names(bylines, linked: bool = False) -> SafeString:
    """The authors of an article as one list in the active language's way ("A, B and C",
    "A, B y C", "A, B et C"), each name escaped and, if `linked`, a link to its page."""
    names = [
        format_html('<a href="{}" rel="author">{}</a>', b.author.get_absolute_url(), b.author.name)
        if linked
        else escape(b.author.name)
        for b in bylines
    ]
    if len(names) < 2:
        return mark_safe("".join(names))  # noqa: S308 (escaped above)
    patterns = _list_patterns(active_language())
    if len(names) == 2:
        text = patterns["2"].format(*names)
    else:
        text = patterns["start"].format(names[0], names[1])
        for name in names[2:-1]:
            text = patterns["middle"].format(text, name)
        text = patterns["end"].format(text, names[-1])
    return mark_safe(text)  # noqa: S308 (every name escaped; CLDR's connectors are plain text)


@lru_cache(maxsize=16)
def _list_patterns(language: str) -> dict[str, str]:
    """CLDR's "A, B and C" patterns for a language, as Babel's format_list uses them (read
    once: Babel's own call costs tens of microseconds, on every card of a listing)."""
    patterns = dict(Locale.parse(to_locale(language)).list_patterns["standard"])
    if language.split("-")[0] == "en":
        patterns["end"] = "{0} and {1}"  # the house style: no serial comma ("A, B and C")
    return patterns
