"""Every reader-facing string of the donate page goes through the translation catalog:
with a catalog that marks what it translates, no unmarked words are left in the form, the
pitch or the messages the page's script shows."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
from django.utils import translation

pytestmark = pytest.mark.django_db


@pytest.fixture
def marking_catalog(monkeypatch):
    """gettext that wraps each translated string in «…»."""
    trans = translation._trans
    real_gettext, real_pgettext, real_ngettext = trans.gettext, trans.pgettext, trans.ngettext
    monkeypatch.setattr(trans, "gettext", lambda message: f"«{real_gettext(message)}»")
    monkeypatch.setattr(
        trans, "pgettext", lambda context, message: f"«{real_pgettext(context, message)}»"
    )
    monkeypatch.setattr(trans, "ngettext", lambda one, many, n: f"«{real_ngettext(one, many, n)}»")


class TextOf(HTMLParser):
    """The text nodes (and labels in attributes people read) inside one element."""

    def __init__(self, element_id: str) -> None:
        super().__init__()
        self.element_id, self.depth, self.texts = element_id, 0, []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if self.depth or attributes.get("id") == self.element_id:
            if tag not in ("input", "br", "img", "meta", "link"):
                self.depth += 1
            for name in ("aria-label", "placeholder", "title"):
                if self.depth and attributes.get(name):
                    self.texts.append(attributes[name])

    def handle_endtag(self, tag):
        if self.depth:
            self.depth -= 1

    def handle_data(self, data):
        if self.depth and data.strip():
            self.texts.append(data.strip())


def untranslated(html: str, element_id: str) -> list[str]:
    parser = TextOf(element_id)
    parser.feed(html)
    # Amounts ($10), the currency code and the outlet's name are data, not words.
    inside = "".join(parser.texts)
    leftovers, marked = inside, 1
    while marked:  # a translated sentence may hold a translated word («Add «a little» …»)
        leftovers, marked = re.subn(r"«[^«»]*»", "", leftovers)
    return [word for word in re.findall(r"[A-Za-z]{3,}", leftovers) if word not in ("USD",)]


def test_the_donate_page_has_no_untranslated_words(client, marking_catalog):
    html = client.get("/donate/").content.decode()

    assert untranslated(html, "donate-form") == []
    assert untranslated(html, "donate-heading") == []


def test_the_scripts_messages_come_from_the_catalog(client, marking_catalog):
    html = client.get("/donate/").content.decode()

    found = re.search(r'<script id="donate-messages" type="application/json">(.*?)</script>', html)
    assert found, "the page hands its script translated messages"
    messages = json.loads(found.group(1))
    assert {"declined", "network", "uncertain", "malformed", "give", "give_month"} <= set(messages)
    assert all(text.startswith("«") for text in messages.values())
