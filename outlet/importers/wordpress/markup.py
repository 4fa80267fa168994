"""The site's own markup for what imported bodies contain, and the notes a conversion leaves.

One place builds a figure, a pull quote or a link card, so blocks and shortcodes
(blocks.py, shortcodes.py) end up as the same HTML the site's editor writes
(see articles/models.BODY_EDITOR_EXTENSIONS and articles/sanitising.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from django.utils.html import escape
from lxml import html as lxml_html

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


@dataclass
class Conversion:
    """What converting one body found: notes for the report, images it refers to."""

    notes: list[str] = field(default_factory=list)
    #: Image addresses in the body, with the attachment id WordPress gave, if any.
    images: dict[str, int | None] = field(default_factory=dict)

    def note(self, message: str) -> None:
        if message not in self.notes:
            self.notes.append(message)


def fragment(markup: str) -> lxml_html.HtmlElement:
    """Parse an HTML fragment under one <div>, whatever it holds (text, several elements)."""
    return lxml_html.fragment_fromstring(markup or "", create_parent="div")


def inner_html(element: lxml_html.HtmlElement) -> str:
    text = escape(element.text) if element.text else ""
    return text + "".join(
        lxml_html.tostring(child, encoding="unicode", with_tail=True) for child in element
    )


def figure_html(*, src: str, alt: str, caption: str = "", conversion: Conversion) -> str:
    """A figure as the site's editor makes it: image, alt text, optional caption (HTML)."""
    if not src:
        return f"<p>{caption}</p>" if caption else ""
    conversion.images.setdefault(src, None)
    caption_html = f"<figcaption>{caption}</figcaption>" if caption.strip() else ""
    return (
        f'<figure class="figure"><img src="{escape(src)}" alt="{escape(alt)}">'
        f"{caption_html}</figure>"
    )


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


def quote_html(markup: str, *, pull: bool) -> str:
    """A quote's paragraphs with its citation as a last line; a pull quote keeps its class."""
    root = fragment(markup)
    paragraphs = [inner_html(p).strip() for p in root.iter("p")]
    if not paragraphs:
        quote = root.find(".//blockquote")
        text = inner_html(quote if quote is not None else root).strip()
        paragraphs = [text] if text else []
    citations = [c.text_content().strip() for c in root.iter("cite")]
    lines = [f"<p>{p}</p>" for p in paragraphs if p]
    lines += [f"<p>— {escape(c)}</p>" for c in citations if c]
    opening = '<blockquote class="pull-quote">' if pull else "<blockquote>"
    return opening + "".join(lines) + "</blockquote>"


def link_card_html(*, url: str, caption: str = "") -> str:
    """An embed (video, post, map) as a plain link readers can follow: no third-party script."""
    if not url:
        return f"<p>{caption}</p>" if caption else ""
    link = f'<p><a href="{escape(url)}">{escape(url)}</a></p>'
    return link + (f"<p><em>{caption}</em></p>" if caption.strip() else "")


def table_html(markup: str) -> str:
    """A table with its caption below it as a paragraph (the figure around it is WordPress's)."""
    root = fragment(markup)
    tables = [lxml_html.tostring(t, encoding="unicode") for t in root.iter("table")]
    captions = [inner_html(c).strip() for c in root.iter("figcaption")]
    return "".join(tables) + "".join(f"<p><em>{c}</em></p>" for c in captions if c)
