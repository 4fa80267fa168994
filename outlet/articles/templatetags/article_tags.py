from __future__ import annotations

import re

from django import template
from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models.fields.files import FieldFile
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from outlet.articles.images import RENDITION_WIDTHS, rendition_name, srcset

register = template.Library()

_IMG = re.compile(r"<img\b([^>]*)>", re.IGNORECASE)
_SRC = re.compile(r'\bsrc="([^"]+)"')
BODY_SIZES = "(max-width: 760px) 100vw, 720px"


@register.simple_tag
def image_srcset(field_file: FieldFile, width: int | None) -> str:
    return srcset(field_file, width)


def _responsive_img(match: re.Match[str]) -> str:
    attributes = match.group(1)
    extra = ' loading="lazy" decoding="async"'
    src = _SRC.search(attributes)
    if src and src.group(1).startswith(settings.MEDIA_URL):
        name = src.group(1).removeprefix(settings.MEDIA_URL)
        widths = [w for w in RENDITION_WIDTHS if default_storage.exists(rendition_name(name, w))]
        if widths:
            candidates = [f"{default_storage.url(rendition_name(name, w))} {w}w" for w in widths]
            extra += f' srcset="{escape(", ".join(candidates))}" sizes="{BODY_SIZES}"'
    return f"<img{attributes.rstrip('/ ')}{extra}>"


@register.filter
def responsive_body(body: str) -> SafeString:
    """The (already sanitised) body with lazy-loading images and srcset for uploads."""
    return mark_safe(_IMG.sub(_responsive_img, body or ""))  # noqa: S308 (sanitised on save)
