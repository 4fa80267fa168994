"""The HTML Ghost rendered for a post, its cards turned into the site's own markup.

Ghost writes each card as a top-level element with the class `kg-card` and one
naming its kind (`kg-image-card`, `kg-bookmark-card`, `kg-callout-card`…). Each is
read back into the card's fields and handed to `cards.card_html`, so a card
reads the same whether the export has its HTML or only its document; the
alternative quote style (`blockquote.kg-blockquote-alt`) becomes the site's pull
quote. Everything else passes as it is, to be sanitised by the converter.
"""

from __future__ import annotations

import re
from typing import Any

from django.utils.html import escape
from lxml import html as lxml_html
from lxml.html import HtmlElement

from ..markup import Conversion, fragment, inner_html, quote_html
from .cards import card_html, unknown_card_html

_CARD_CLASS = re.compile(r"\bkg-([a-z0-9-]+)-card\b")
#: Rendered card classes whose card has another name.
_CARD_NAMES = {"cta": "call-to-action"}


def _classes(element: HtmlElement) -> set[str]:
    return set((element.get("class") or "").split())


def _first(element: HtmlElement, class_name: str) -> HtmlElement | None:
    for child in element.iter():
        if isinstance(child.tag, str) and class_name in _classes(child):
            return child
    return None


def _inner(element: HtmlElement, class_name: str) -> str:
    found = _first(element, class_name)
    return inner_html(found).strip() if found is not None else ""


def _text(element: HtmlElement, class_name: str) -> str:
    found = _first(element, class_name)
    return found.text_content().strip() if found is not None else ""


def _caption(element: HtmlElement) -> str:
    captions = list(element.iter("figcaption"))
    return inner_html(captions[-1]).strip() if captions else ""


def _href(element: HtmlElement, class_name: str = "") -> str:
    found = _first(element, class_name) if class_name else None
    links = [found] if found is not None else list(element.iter("a"))
    return next((a.get("href", "") for a in links if a is not None and a.get("href")), "")


def _image(img: HtmlElement) -> dict[str, str]:
    return {"src": img.get("src", ""), "alt": img.get("alt", "")}


def _payload(name: str, card: HtmlElement) -> dict[str, Any] | None:
    """The fields of a rendered card, as its mobiledoc or lexical payload names them."""
    if name == "image":
        img = next(card.iter("img"), None)
        return {**(_image(img) if img is not None else {}), "caption": _caption(card)}
    if name == "gallery":
        return {"images": [_image(img) for img in card.iter("img")], "caption": _caption(card)}
    if name == "embed":
        return {
            "url": "",
            "html": lxml_html.tostring(card, encoding="unicode"),
            "caption": _caption(card),
        }
    if name == "bookmark":
        return {
            "url": _href(card, "kg-bookmark-container"),
            "metadata": {"title": _text(card, "kg-bookmark-title")},
            "caption": _caption(card),
        }
    if name == "callout":
        return {
            "calloutEmoji": _text(card, "kg-callout-emoji"),
            "calloutText": _inner(card, "kg-callout-text"),
        }
    if name == "toggle":
        return {
            "heading": _inner(card, "kg-toggle-heading-text"),
            "content": _inner(card, "kg-toggle-content"),
        }
    if name == "button":
        anchor = next(card.iter("a"), None)
        return {
            "buttonUrl": anchor.get("href", "") if anchor is not None else "",
            "buttonText": anchor.text_content().strip() if anchor is not None else "",
        }
    if name in ("video", "audio"):
        media = next((e for e in card.iter("video", "audio", "source") if e.get("src")), None)
        return {
            "src": media.get("src", "") if media is not None else "",
            "title": _text(card, "kg-audio-title"),
            "caption": _caption(card),
        }
    if name == "file":
        return {
            "src": _href(card, "kg-file-card-container"),
            "fileTitle": _text(card, "kg-file-card-title"),
            "fileCaption": _text(card, "kg-file-card-caption"),
        }
    if name == "code":
        return {"code": card.text_content(), "caption": _caption(card)}
    if name in ("signup", "email", "email-cta", "collection", "paywall"):
        return {}
    return None


def _card(element: HtmlElement, conversion: Conversion) -> str | None:
    """Site markup for a rendered card, or None if the element is not a card."""
    classes = _classes(element)
    if element.tag == "pre":  # a code card without a caption: its lines kept
        return card_html("code", {"code": element.text_content()}, conversion=conversion)
    if element.tag == "blockquote" and "kg-blockquote-alt" in classes:
        return quote_html(lxml_html.tostring(element, encoding="unicode"), pull=True)
    if "kg-card" not in classes:
        return None
    names = sorted(m.group(1) for c in classes if (m := _CARD_CLASS.fullmatch(c)))
    if not names:
        return None
    name = _CARD_NAMES.get(names[0], names[0])
    payload = _payload(name, element)
    if payload is None:
        return unknown_card_html(name, {"html": inner_html(element)}, conversion=conversion)
    return card_html(name, payload, conversion=conversion)


def rendered_html(markup: str, *, conversion: Conversion) -> str:
    """Ghost's rendered post HTML as site markup (before sanitising)."""
    root = fragment(markup)
    parts: list[str] = [str(escape(root.text or ""))]
    for element in root:
        converted = _card(element, conversion) if isinstance(element.tag, str) else ""
        if converted is None:
            parts.append(lxml_html.tostring(element, encoding="unicode", with_tail=True))
        else:  # a card, or a comment (Ghost's card and members-only markers)
            parts.append(converted + escape(element.tail or ""))
    return "".join(parts)
