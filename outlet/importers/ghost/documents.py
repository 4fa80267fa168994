"""Ghost's two editor documents rendered as site markup: lexical (Ghost 5+) and mobiledoc (1–4).

Ghost stores the rendered `html` beside them, and the converter prefers it; these
render a post whose export has only the document. Text, headings, lists, links
and quotes become plain HTML (the alternative quote style, `aside`, the site's
pull quote); every card goes through `cards.card_html`, so a card reads the
same whichever document it came from.

Lexical: `{"root": {"children": [nodes]}}`, text nodes carrying a format bit
mask (1 bold, 2 italic). Mobiledoc 0.3: `sections` of markup text (`[1, tag,
markers]`), images (`[2, src]`), lists (`[3, tag, items]`) and cards
(`[10, index]`), each marker opening and closing `markups` by index.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from django.utils.html import escape

from ..markup import Conversion, figure_html, quote_html
from .cards import card_html

_BOLD, _ITALIC = 1, 2
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
#: Inline markups kept from mobiledoc (the sanitiser drops the rest and keeps their text).
_INLINE = {"a", "strong", "b", "em", "i"}


class DocumentUnreadable(ValueError):
    """The stored document is not valid JSON of the expected shape."""


def _load(document: str | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(document, Mapping):
        return document
    try:
        loaded = json.loads(document)
    except ValueError as exc:
        raise DocumentUnreadable(str(exc)) from exc
    if not isinstance(loaded, Mapping):
        raise DocumentUnreadable("not a JSON object")
    return loaded


# --- lexical ---------------------------------------------------------------------------


def _lexical_children(node: Mapping[str, Any], conversion: Conversion) -> str:
    children = node.get("children")
    if not isinstance(children, list):
        return ""
    return "".join(_lexical_node(c, conversion) for c in children if isinstance(c, Mapping))


def _lexical_text(node: Mapping[str, Any]) -> str:
    text = str(escape(str(node.get("text") or "")))
    mask = node.get("format")
    mask = mask if isinstance(mask, int) else 0
    if mask & _ITALIC:
        text = f"<em>{text}</em>"
    if mask & _BOLD:
        text = f"<strong>{text}</strong>"
    return text


def _lexical_node(node: Mapping[str, Any], conversion: Conversion) -> str:
    kind = str(node.get("type") or "")
    if kind in ("text", "extended-text"):
        return _lexical_text(node)
    if kind == "linebreak":
        return "<br>"
    if kind == "tab":
        return " "
    inner = _lexical_children(node, conversion)
    if kind == "paragraph":
        return f"<p>{inner}</p>" if inner.strip() else ""
    if kind in ("heading", "extended-heading"):
        tag = str(node.get("tag") or "h2")
        tag = tag if tag in _HEADINGS else "h2"
        return f"<{tag}>{inner}</{tag}>"
    if kind in ("quote", "extended-quote", "aside"):
        return quote_html(f"<p>{inner}</p>", pull=kind == "aside")
    if kind == "list":
        tag = "ol" if node.get("listType") == "number" or node.get("tag") == "ol" else "ul"
        start = node.get("start")
        opening = f'<ol start="{start}">' if tag == "ol" and start not in (None, 1) else f"<{tag}>"
        return f"{opening}{inner}</{tag}>"
    if kind == "listitem":
        return f"<li>{inner}</li>"
    if kind in ("link", "autolink", "at-link"):
        return f'<a href="{escape(str(node.get("url") or ""))}">{inner}</a>'
    if "children" in node:  # an element node we do not know: its text is what matters
        conversion.note(f"the Ghost element “{kind}” was kept as its text")
        return inner
    return card_html(kind, node, conversion=conversion)


def lexical_html(document: str | Mapping[str, Any], *, conversion: Conversion) -> str:
    """A lexical document as site markup (before sanitising)."""
    root = _load(document).get("root")
    if not isinstance(root, Mapping):
        raise DocumentUnreadable("a lexical document without a root")
    return _lexical_children(root, conversion)


# --- mobiledoc -------------------------------------------------------------------------


def _at(items: Sequence[Any], index: Any) -> Any:
    return items[index] if isinstance(index, int) and 0 <= index < len(items) else None


def _mobiledoc_markers(markers: Any, doc: Mapping[str, Any]) -> str:
    markups, atoms = doc.get("markups") or [], doc.get("atoms") or []
    out: list[str] = []
    open_tags: list[str] = []
    for marker in markers if isinstance(markers, list) else []:
        if not isinstance(marker, list) or len(marker) < 4:
            continue
        kind, opens, closes, value = marker[:4]
        for index in opens if isinstance(opens, list) else []:
            markup = _at(markups, index) or ["span"]
            tag = str(markup[0]).lower()
            attributes = markup[1] if len(markup) > 1 and isinstance(markup[1], list) else []
            pairs = dict(zip(attributes[::2], attributes[1::2], strict=False))
            tag = tag if tag in _INLINE else "span"
            href = f' href="{escape(str(pairs.get("href", "")))}"' if tag == "a" else ""
            out.append(f"<{tag}{href}>")
            open_tags.append(tag)
        if kind == 1:  # an atom: Ghost's soft return, or a named inline thing
            atom = _at(atoms, value) or ["", "", {}]
            out.append("<br>" if atom[0] == "soft-return" else escape(str(atom[1] or "")))
        else:
            out.append(escape(str(value or "")))
        for _ in range(closes if isinstance(closes, int) else 0):
            if open_tags:
                out.append(f"</{open_tags.pop()}>")
    out.extend(f"</{tag}>" for tag in reversed(open_tags))
    return "".join(out)


def _mobiledoc_section(section: list[Any], doc: Mapping[str, Any], conversion: Conversion) -> str:
    kind = section[0]
    if kind == 1 and len(section) >= 3:
        tag = str(section[1]).lower()
        inner = _mobiledoc_markers(section[2], doc)
        if tag in ("blockquote", "aside"):
            return quote_html(f"<p>{inner}</p>", pull=tag == "aside")
        tag = tag if tag in _HEADINGS else "p"
        return f"<{tag}>{inner}</{tag}>" if inner.strip() or tag != "p" else ""
    if kind == 2 and len(section) >= 2:
        return figure_html(src=str(section[1] or ""), alt="", conversion=conversion)
    if kind == 3 and len(section) >= 3:
        tag = "ol" if str(section[1]).lower() == "ol" else "ul"
        items = section[2] if isinstance(section[2], list) else []
        return (
            f"<{tag}>"
            + "".join(f"<li>{_mobiledoc_markers(i, doc)}</li>" for i in items)
            + (f"</{tag}>")
        )
    if kind == 10 and len(section) >= 2:
        card = _at(doc.get("cards") or [], section[1])
        if isinstance(card, list) and card:
            payload = card[1] if len(card) > 1 and isinstance(card[1], Mapping) else {}
            return card_html(str(card[0]), payload, conversion=conversion)
    return ""


def mobiledoc_html(document: str | Mapping[str, Any], *, conversion: Conversion) -> str:
    """A mobiledoc document as site markup (before sanitising)."""
    doc = _load(document)
    sections = doc.get("sections")
    if not isinstance(sections, list):
        raise DocumentUnreadable("a mobiledoc document without sections")
    return "".join(
        _mobiledoc_section(s, doc, conversion) for s in sections if isinstance(s, list) and s
    )
