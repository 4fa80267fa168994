"""Streaming a WordPress export (WXR 1.0–1.2) into plain records, one element at a time.

The export is read with `lxml.etree.iterparse` and each element is cleared once
read, so memory stays flat however many posts the file holds. Elements are
matched by local name, not by namespace URI: exports declare
`http://wordpress.org/export/1.0/` to `…/1.2/` (and the excerpt namespace to
match), and any of them is read the same way. Entities are not resolved and
nothing is fetched from the network while parsing.

`export_index` is the first, cheap pass: it checks the whole file is well formed
before anything is written, and keeps what posts refer to from anywhere in the
file (authors, categories, tags, attachments, guest authors). `export_items`
is the second pass, yielding the posts and pages themselves.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from ..running import SourceUnreadable
from .shortcodes import Attachment

CONTENT_TYPES = ("post", "page")


class ExportUnreadable(SourceUnreadable):
    """The file is not a (complete) WordPress export; the message says why, for a person."""


@dataclass(frozen=True)
class Term:
    taxonomy: str  # "category", "post_tag" or "author" (Co-Authors Plus)
    slug: str
    name: str
    parent: str = ""
    term_id: str = ""


@dataclass(frozen=True)
class Person:
    login: str
    display_name: str
    email: str = ""
    author_id: str = ""


@dataclass
class Item:
    post_id: int
    post_type: str
    status: str
    title: str = ""
    link: str = ""
    slug: str = ""
    content: str = ""
    excerpt: str = ""
    creator: str = ""
    date: str = ""
    date_gmt: str = ""
    password: str = ""
    sticky: bool = False
    parent_id: int = 0
    terms: list[Term] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)
    attachment_url: str = ""


@dataclass
class ExportIndex:
    site_url: str = ""
    blog_url: str = ""
    people: dict[str, Person] = field(default_factory=dict)
    terms: dict[tuple[str, str], Term] = field(default_factory=dict)
    attachments: dict[int, Attachment] = field(default_factory=dict)
    items: int = 0


@functools.lru_cache(maxsize=512)
def _split(tag: str) -> tuple[str, str]:
    """(namespace, local name) of an lxml tag ("{ns}name"); an export has few distinct tags,
    and this runs for every element of it."""
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


def _local(tag: object) -> str:
    return _split(tag)[1] if isinstance(tag, str) else ""


def _namespace(tag: object) -> str:
    return _split(tag)[0] if isinstance(tag, str) else ""


def _plain(text: str) -> str:
    """A name WordPress stored HTML-escaped (titles, term and author names) as plain text."""
    return html.unescape(text or "").strip()


def _child_text(element: etree._Element, name: str, *, excerpt: bool = False) -> str:
    for child in element:
        if _local(child.tag) != name:
            continue
        if name == "encoded" and ("excerpt" in _namespace(child.tag)) != excerpt:
            continue
        return child.text or ""
    return ""


def _elements(path: Path, tags: set[str]) -> Iterator[etree._Element]:
    """Each finished element with a local name in `tags`, cleared after the caller is done."""
    try:
        context = etree.iterparse(
            str(path),
            events=("end",),
            resolve_entities=False,
            no_network=True,
            huge_tree=True,
            remove_comments=True,
        )
        saw_rss = False
        for _event, element in context:
            name = _local(element.tag)
            saw_rss = saw_rss or name == "channel"
            if name in tags and _parent_name(element) in ("channel", ""):
                yield element
                element.clear(keep_tail=False)
                while element.getprevious() is not None:
                    del element.getparent()[0]
        if not saw_rss:
            raise ExportUnreadable("This is not a WordPress export: it has no RSS channel.")
    except etree.XMLSyntaxError as exc:
        raise ExportUnreadable(
            f"The file is not a complete WordPress export (XML error at line {exc.lineno}: "
            f"{exc.msg}). Nothing was imported; export it again from WordPress."
        ) from exc
    except OSError as exc:
        raise ExportUnreadable(f"The file could not be read: {exc}.") from exc


def _parent_name(element: etree._Element) -> str:
    parent = element.getparent()
    return _local(parent.tag) if parent is not None else ""


def _meta(element: etree._Element) -> dict[str, str]:
    meta = {}
    for child in element:
        if _local(child.tag) == "postmeta":
            meta[_child_text(child, "meta_key")] = _child_text(child, "meta_value")
    return meta


def _item(element: etree._Element) -> Item:
    texts: dict[str, str] = {}  # the first child of each name, as _child_text finds it
    for child in element:
        namespace, name = _namespace(child.tag), _local(child.tag)
        key = "excerpt:encoded" if name == "encoded" and "excerpt" in namespace else name
        texts.setdefault(key, child.text or "")

    def text(name: str) -> str:
        return texts.get(name, "")

    terms = [
        Term(
            taxonomy=child.get("domain", ""),
            slug=child.get("nicename", ""),
            name=_plain(child.text or ""),
        )
        for child in element
        if _local(child.tag) == "category" and not _namespace(child.tag)
    ]
    try:
        post_id = int(text("post_id"))
    except ValueError:
        post_id = 0
    try:
        parent_id = int(text("post_parent") or 0)
    except ValueError:
        parent_id = 0
    return Item(
        post_id=post_id,
        post_type=text("post_type"),
        status=text("status"),
        title=_plain(text("title")),
        link=text("link"),
        slug=text("post_name"),
        content=text("encoded"),
        excerpt=text("excerpt:encoded"),
        creator=text("creator"),
        date=text("post_date"),
        date_gmt=text("post_date_gmt"),
        password=text("post_password"),
        sticky=text("is_sticky") == "1",
        parent_id=parent_id,
        terms=terms,
        meta=_meta(element),
        attachment_url=text("attachment_url"),
    )


def export_index(path: Path) -> ExportIndex:
    """Read the whole file once: raise ExportUnreadable if it is not a complete export."""
    index = ExportIndex()
    tags = {"base_site_url", "base_blog_url", "author", "category", "tag", "term", "item"}
    for element in _elements(path, tags):
        name = _local(element.tag)
        if name in ("base_site_url", "base_blog_url"):
            setattr(
                index, "site_url" if name == "base_site_url" else "blog_url", element.text or ""
            )
        elif name == "author" and _namespace(element.tag):
            login = _child_text(element, "author_login")
            index.people[login] = Person(
                login=login,
                display_name=_plain(_child_text(element, "author_display_name"))
                or " ".join(
                    filter(
                        None,
                        (
                            _child_text(element, "author_first_name"),
                            _child_text(element, "author_last_name"),
                        ),
                    )
                )
                or login,
                email=_child_text(element, "author_email"),
                author_id=_child_text(element, "author_id"),
            )
        elif name == "category" and _namespace(element.tag):
            slug = _child_text(element, "category_nicename")
            index.terms["category", slug] = Term(
                "category",
                slug,
                _plain(_child_text(element, "cat_name")) or slug,
                _child_text(element, "category_parent"),
                _child_text(element, "term_id"),
            )
        elif name == "tag":
            slug = _child_text(element, "tag_slug")
            index.terms["post_tag", slug] = Term(
                "post_tag",
                slug,
                _plain(_child_text(element, "tag_name")) or slug,
                "",
                _child_text(element, "term_id"),
            )
        elif name == "item":
            index.items += 1
            item = _item(element)
            if item.post_type == "attachment":
                index.attachments[item.post_id] = Attachment(
                    post_id=item.post_id,
                    url=item.attachment_url,
                    relative_path=item.meta.get("_wp_attached_file", ""),
                    alt=item.meta.get("_wp_attachment_image_alt", ""),
                    caption=item.excerpt.strip(),
                    link=item.link,
                    parent_id=item.parent_id,
                )
            elif item.post_type == "guest-author":  # Co-Authors Plus
                login = item.meta.get("cap-user_login") or item.slug.removeprefix("cap-")
                index.people[login] = Person(
                    login=login,
                    display_name=_plain(item.meta.get("cap-display_name", ""))
                    or item.title
                    or login,
                    email=item.meta.get("cap-user_email", ""),
                )
    if not index.site_url and not index.blog_url and not index.items:
        raise ExportUnreadable(
            "This RSS file is not a WordPress export (no wp:base_site_url, no items)."
        )
    return index


def export_items(path: Path) -> Iterator[Item]:
    """Every item of the export (posts, pages and everything else), in file order."""
    for element in _elements(path, {"item"}):
        yield _item(element)
