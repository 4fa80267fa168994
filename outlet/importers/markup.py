"""The site's own markup for what imported bodies contain, shared by every source.

One place builds a figure, a pull quote or a link card, so WordPress blocks and
shortcodes, Ghost cards and Substack's boxes end up as the same HTML the site's
editor writes (see articles/models.BODY_EDITOR_EXTENSIONS and
articles/sanitising.py). `Conversion` collects what converting one body noted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.utils.html import escape
from lxml import etree
from lxml import html as lxml_html

#: Markup the sanitiser will remove (scripts, frames, event handlers): the report says so.
ACTIVE_CONTENT = re.compile(r"<(script|iframe|object|embed)\b|\son[a-z]+\s*=", re.IGNORECASE)
ACTIVE_CONTENT_NOTE = "scripts, frames or event handlers were removed"


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
    """Parse an HTML fragment under one <div>, whatever it holds (text, several elements).

    A whole document with nothing in its body (`<!DOCTYPE html>`, `<html><head>…</html>`)
    is an empty <div>: lxml raises for it, and one such post must not stop an import.
    """
    try:
        return lxml_html.fragment_fromstring(markup or "", create_parent="div")
    except (etree.ParserError, AssertionError, IndexError):
        return lxml_html.Element("div")


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
