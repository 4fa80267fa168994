"""Gutenberg block documents (`<!-- wp:name {attrs} -->…<!-- /wp:name -->`) as site markup.

The block parser follows WordPress's own (wp-includes/class-wp-block-parser.php):
delimiters are HTML comments, blocks nest, a void block ends in `/-->`, and text
between top-level blocks is classic (freeform) content. Each block then becomes
the site's markup: a pull quote stays a pull quote, an image keeps its caption
and alt text, an embed becomes a link card. Blocks with no counterpart keep their
content (sanitised later) and are named in the notes, never silently dropped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..markup import Conversion, fragment, link_card_html, quote_html
from .autop import wpautop
from .markup import figures_from, table_html
from .shortcodes import Attachment, shortcodes_convert

_DELIMITER = re.compile(
    r"<!--\s+(?P<closer>/)?wp:(?P<name>[a-z][a-z0-9_-]*(?:/[a-z][a-z0-9_-]*)?)\s+"
    r"(?:(?P<attrs>\{.*?\})\s+)?(?P<void>/)?-->",
    re.DOTALL,
)
#: Blocks whose saved HTML is already the right markup (the sanitiser trims classes).
_PASS_THROUGH = {
    "paragraph", "heading", "list", "list-item", "code", "preformatted", "verse",
    "freeform", "missing", "buttons", "button", "file",
}  # fmt: skip
#: Blocks with nothing a reader of an article needs.
_LAYOUT_ONLY = {"spacer", "more", "nextpage", "page-break"}
#: Containers whose content is kept without a note: their children are what matters.
_CONTAINERS = {"group", "columns", "column", "media-text", "cover", "details", "row", "stack"}


@dataclass
class Block:
    name: str
    attributes: dict
    parts: list[str | Block] = field(default_factory=list)


def has_blocks(content: str) -> bool:
    return "<!-- wp:" in (content or "")


def blocks_parse(content: str) -> list[str | Block]:
    """The document as a list of freeform text and (nested) blocks."""
    document: list[str | Block] = []
    stack: list[Block] = []
    position = 0

    def add(item: str | Block) -> None:
        (stack[-1].parts if stack else document).append(item)

    for match in _DELIMITER.finditer(content):
        if match.start() > position:
            add(content[position : match.start()])
        position = match.end()
        name = match.group("name")
        name = name if "/" in name else f"core/{name}"
        if match.group("closer"):
            # Close the innermost open block of this name; a stray closer is ignored.
            for depth in range(len(stack) - 1, -1, -1):
                if stack[depth].name == name:
                    while len(stack) > depth:
                        finished = stack.pop()
                        add(finished)
                    break
            continue
        try:
            attributes = json.loads(match.group("attrs") or "{}")
        except ValueError:
            attributes = {}
        block = Block(name=name, attributes=attributes if isinstance(attributes, dict) else {})
        if match.group("void"):
            add(block)
        else:
            stack.append(block)
    if position < len(content):
        add(content[position:])
    while stack:  # unclosed blocks keep their content
        finished = stack.pop()
        add(finished)
    return document


def _render_parts(
    parts: list[str | Block], attachments: Mapping[int, Attachment], conversion: Conversion
) -> str:
    return "".join(
        part if isinstance(part, str) else _render(part, attachments, conversion) for part in parts
    )


def _render(block: Block, attachments: Mapping[int, Attachment], conversion: Conversion) -> str:
    namespace, _, short = block.name.partition("/")
    inner = _render_parts(block.parts, attachments, conversion)
    if namespace == "core-embed" or short == "embed":
        root = fragment(inner)
        url = str(block.attributes.get("url") or (root.text_content().split() or [""])[0])
        caption = "".join(c.text_content() for c in root.iter("figcaption")).strip()
        return link_card_html(url=url, caption=caption)
    if namespace != "core":
        conversion.note(f"the block {block.name} was kept as sanitised HTML")
        return inner
    if short in _PASS_THROUGH:
        return wpautop(inner) if short == "freeform" else inner
    if short in _LAYOUT_ONLY:
        return ""
    if short in _CONTAINERS:
        return inner
    if short == "pullquote":
        return quote_html(inner, pull=True)
    if short == "quote":
        return quote_html(inner, pull=False)
    if short in ("image", "gallery"):
        return figures_from(inner, attachments=attachments, conversion=conversion)
    if short == "table":
        return table_html(inner)
    if short == "separator":
        return "<hr>"
    if short == "html":
        return inner
    if short == "shortcode":
        return shortcodes_convert(inner, attachments=attachments, conversion=conversion)
    if short in ("video", "audio"):
        root = fragment(inner)
        source = next(
            (e.get("src") for e in root.iter("video", "audio", "source") if e.get("src")), ""
        )
        caption = "".join(c.text_content() for c in root.iter("figcaption")).strip()
        return link_card_html(url=source, caption=caption)
    if short == "block":
        conversion.note(f"a reusable block (#{block.attributes.get('ref', '?')}) was left out")
        return ""
    conversion.note(f"the block {block.name} was kept as sanitised HTML")
    return inner


def blocks_convert(
    content: str, *, attachments: Mapping[int, Attachment], conversion: Conversion
) -> str:
    """A block document as site markup (before sanitising); freeform text gets paragraphs."""
    rendered = []
    for part in blocks_parse(content):
        if isinstance(part, str):
            rendered.append(wpautop(part) if part.strip() else "")
        else:
            rendered.append(_render(part, attachments, conversion))
    return "".join(rendered)
