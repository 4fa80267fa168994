"""Finding reader-facing words that skip the translation catalog (issue 24).

`catalog_marks(monkeypatch)` makes every gettext, pgettext and ngettext wrap what it
returns in «…»; `unmarked_words(text, data=...)` is then what is left outside the marks,
once the data (names, addresses, amounts, links) is taken out. A word left is a word a
Spanish reader would see in English."""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser

from django.utils import translation


def catalog_marks(monkeypatch) -> None:
    trans = translation._trans
    real_gettext, real_pgettext, real_ngettext = trans.gettext, trans.pgettext, trans.ngettext
    monkeypatch.setattr(trans, "gettext", lambda message: f"«{real_gettext(message)}»")
    monkeypatch.setattr(
        trans, "pgettext", lambda context, message: f"«{real_pgettext(context, message)}»"
    )
    monkeypatch.setattr(trans, "ngettext", lambda one, many, n: f"«{real_ngettext(one, many, n)}»")


class _Text(HTMLParser):
    """Text nodes, and the attributes people read, inside the element with `element_id`
    (the whole document when None)."""

    VOID = ("input", "br", "img", "meta", "link", "hr")

    def __init__(self, element_id: str | None) -> None:
        super().__init__()
        self.element_id, self.depth, self.texts = element_id, 0 if element_id else 1, []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        inside = self.depth or attributes.get("id") == self.element_id
        if inside and tag not in self.VOID:
            self.depth += 1
        if inside:
            self.texts += [attributes[n] for n in ("aria-label", "placeholder", "title", "alt")
                           if attributes.get(n)]  # fmt: skip

    def handle_endtag(self, tag):
        if self.depth and (self.element_id or self.depth > 1):
            self.depth -= 1

    def handle_data(self, data):
        if self.depth and data.strip():
            self.texts.append(data.strip())


def html_text(html: str, element_id: str | None = None) -> str:
    parser = _Text(element_id)
    parser.feed(html)
    return " ".join(parser.texts)


def unmarked_words(text: str, *, data: tuple[str, ...] = ()) -> list[str]:
    text = unescape(text)
    for value in sorted(data, key=len, reverse=True):
        text = text.replace(value, " ")
    text = re.sub(r"https?://[^\s«»]+|[^\s«»()]+@[^\s«»()]+", " ", text)
    marked = 1
    while marked:  # a translated sentence may hold a translated word («Status: «Active»»)
        text, marked = re.subn(r"«[^«»]*»", " ", text)
    return re.findall(r"[A-Za-z]{3,}", text)
