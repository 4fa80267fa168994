"""WordPress shortcodes ([caption], [gallery], [embed], [video], [audio]) as site markup.

Shortcodes only become HTML when WordPress renders a post; an export holds them
as written. The common ones are turned into the site's figures and link cards;
any other shortcode is left as text and named in the report, never dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..markup import Conversion, figure_html, fragment, inner_html, link_card_html
from .markup import Attachment, image_alt

_KNOWN = ("caption", "wp_caption", "gallery", "embed", "video", "audio", "playlist")
_SHORTCODE = re.compile(
    r"\[(?P<name>" + "|".join(_KNOWN) + r")(?![\w-])(?P<attrs>[^\]]*?)(?P<void>/)?\]"
    r"(?:(?P<content>.*?)\[/(?P=name)\])?",
    re.DOTALL,
)
_ANY_SHORTCODE = re.compile(r"\[(/?)([a-zA-Z][\w-]*)(?:\s[^\]]*)?\]")
_ATTRIBUTE = re.compile(
    r"([\w-]+)\s*=\s*\"([^\"]*)\"|([\w-]+)\s*=\s*'([^']*)'|([\w-]+)\s*=\s*([^\s'\"]+)"
)
_MEDIA_KEYS = ("src", "mp4", "m4v", "webm", "ogv", "mp3", "ogg", "wav", "m4a", "flv", "wmv")


def parse_attributes(text: str) -> dict[str, str]:
    """`shortcode_parse_atts`: name="value", name='value' and name=value pairs."""
    attributes = {}
    for match in _ATTRIBUTE.finditer(text or ""):
        name = match.group(1) or match.group(3) or match.group(5)
        value = match.group(2) if match.group(1) else match.group(4) or match.group(6) or ""
        attributes[name.lower()] = value
    return attributes


def _caption(
    attributes: dict[str, str],
    content: str,
    attachments: Mapping[int, Attachment],
    conversion: Conversion,
) -> str:
    root = fragment(content)
    img = next(root.iter("img"), None)
    if img is None:
        return content
    src = img.get("src", "")
    match = re.search(r"\bwp-image-(\d+)\b", img.get("class", ""))
    attachment_id = int(match.group(1)) if match else None
    if src and attachment_id:
        conversion.images[src] = attachment_id
    # The caption is the text around the image (or its link), or the older caption="" form.
    holder = img.getparent() if img.getparent() is not None and img.getparent().tag == "a" else img
    holder.drop_tree()
    caption = inner_html(root).strip() or attributes.get("caption", "")
    alt = image_alt(img.get("alt", ""), attachment_id, attachments)
    return figure_html(src=src, alt=alt, caption=caption, conversion=conversion)


def _gallery(
    attributes: dict[str, str], attachments: Mapping[int, Attachment], conversion: Conversion
) -> str:
    ids = [
        int(i) for i in re.findall(r"\d+", attributes.get("ids") or attributes.get("include", ""))
    ]
    if not ids:
        conversion.note("a [gallery] without ids (the post's own attachments) was left out")
        return ""
    figures = []
    for attachment_id in ids:
        attachment = attachments.get(attachment_id)
        if attachment is None:
            conversion.note(f"gallery image {attachment_id} is not in the export")
            continue
        conversion.images[attachment.url] = attachment_id
        figures.append(
            figure_html(
                src=attachment.url,
                alt=attachment.alt,
                caption=attachment.caption,
                conversion=conversion,
            )
        )
    return "".join(figures)


def shortcodes_convert(
    text: str, *, attachments: Mapping[int, Attachment], conversion: Conversion
) -> str:
    """Replace the known shortcodes with site markup; name any other in the notes."""

    def replace(match: re.Match[str]) -> str:
        name = match.group("name")
        attributes = parse_attributes(match.group("attrs"))
        content = match.group("content") or ""
        if name in ("caption", "wp_caption"):
            return _caption(attributes, content, attachments, conversion)
        if name == "gallery":
            return _gallery(attributes, attachments, conversion)
        if name == "embed":
            return link_card_html(url=content.strip() or attributes.get("src", ""))
        if name == "playlist":
            conversion.note("a [playlist] was left out (no player here)")
            return ""
        url = next((attributes[key] for key in _MEDIA_KEYS if attributes.get(key)), "")
        return link_card_html(url=url or content.strip())

    converted = _SHORTCODE.sub(replace, text)
    for other in {m.group(2) for m in _ANY_SHORTCODE.finditer(converted) if not m.group(1)}:
        conversion.note(f"the shortcode [{other}] was kept as text")
    return converted


__all__ = ["Attachment", "parse_attributes", "shortcodes_convert"]
