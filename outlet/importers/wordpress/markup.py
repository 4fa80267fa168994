"""WordPress's own pieces of body markup: attachments, images by attachment id, tables.

The markup every source shares (figure, pull quote, link card, `Conversion`) lives
in `importers/markup.py`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from lxml import html as lxml_html

from ..markup import Conversion, figure_html, fragment, inner_html

_WP_IMAGE_CLASS = re.compile(r"\bwp-image-(\d+)\b")


@dataclass(frozen=True)
class Attachment:
    """What the export says of one uploaded file (an `attachment` item)."""

    post_id: int
    url: str
    relative_path: str = ""
    alt: str = ""
    caption: str = ""
    #: Its own page on the old site, and the post it was uploaded to (0: none).
    link: str = ""
    parent_id: int = 0


def image_alt(
    img_alt: str, attachment_id: int | None, attachments: Mapping[int, Attachment]
) -> str:
    """The image's own alt text, else the one its attachment has in WordPress's library."""
    if img_alt.strip() or attachment_id is None or attachment_id not in attachments:
        return img_alt
    return attachments[attachment_id].alt


def figures_from(
    markup: str, *, attachments: Mapping[int, Attachment], conversion: Conversion
) -> str:
    """Every image in `markup` as a site figure, each with its own caption if it has one."""
    root = fragment(markup)
    figures = []
    for img in root.iter("img"):
        src = img.get("src", "")
        match = _WP_IMAGE_CLASS.search(img.get("class", ""))
        attachment_id = int(match.group(1)) if match else None
        if src and attachment_id:
            conversion.images[src] = attachment_id
        caption = ""
        parent = img.getparent()
        while parent is not None and parent is not root and parent.tag != "figure":
            parent = parent.getparent()
        if parent is not None and parent.tag == "figure":
            captions = [c for c in parent.iter("figcaption") if c.getparent() is parent]
            caption = inner_html(captions[0]).strip() if captions else ""
        alt = image_alt(img.get("alt", ""), attachment_id, attachments)
        figures.append(figure_html(src=src, alt=alt, caption=caption, conversion=conversion))
    return "".join(figures)


def table_html(markup: str) -> str:
    """A table with its caption below it as a paragraph (the figure around it is WordPress's)."""
    root = fragment(markup)
    tables = [lxml_html.tostring(t, encoding="unicode") for t in root.iter("table")]
    captions = [inner_html(c).strip() for c in root.iter("figcaption")]
    return "".join(tables) + "".join(f"<p><em>{c}</em></p>" for c in captions if c)
