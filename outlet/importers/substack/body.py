"""A Substack post's HTML as the site's body: Substack's chrome out, its pieces in our markup.

Pure functions of their arguments (no database, no files), so a fixture test can
call them. What Substack adds around the writing (subscribe boxes and buttons,
share and comment buttons, the paywall marker) is removed; images become the
site's figures with caption and alt, pull quotes stay pull quotes, embedded
posts, tweets and videos become link cards (no third-party script), footnotes
are kept as a numbered list at the end, and image addresses on Substack's CDN
are reduced to the original file's address (the one the media library stores).
Then the whole body goes through the site's sanitiser, as an editor's save does.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

from django.utils.html import escape
from lxml import html as lxml_html

from outlet.articles.sanitising import sanitise_body

from ..markup import (
    ACTIVE_CONTENT,
    ACTIVE_CONTENT_NOTE,
    Conversion,
    figure_html,
    fragment,
    inner_html,
    link_card_html,
    quote_html,
)
from ..source import SourceImage

#: Substack's own boxes around the writing: removed with everything in them.
CHROME_CLASSES = {
    "subscription-widget-wrap",
    "subscription-widget-wrap-editor",
    "subscription-widget",
    "subscribe-widget",
    "captioned-button-wrap",
    "share-dialog",
    "post-ufi",
    "install-substack-app",
    "image-link-expand",
    "footer-wrap",
    "post-footer",
}
CHROME_TAGS = {"form", "button", "input", "textarea", "select", "svg"}
#: Embeds shown as a link card, by the class Substack gives each.
EMBED_CLASSES = {
    "tweet",
    "embedded-post-wrap",
    "embedded-post",
    "digest-post-embed",
    "embedded-publication-wrap",
    "youtube-wrap",
    "vimeo-wrap",
    "spotify-wrap",
    "soundcloud-wrap",
    "apple-podcast-container",
    "bandcamp-wrap",
    "tiktok-wrap",
    "instagram",
    "github-gist",
    "datawrapper-wrap",
    "native-video-embed",
}
#: Buttons that only make sense on Substack (subscribe, share, gift, comment).
#: Where Substack's own buttons lead (subscribe, comments, account, app), by path ending.
CHROME_PATHS = ("/subscribe", "/comments", "/comment", "/account", "/app", "/app-link/post")
_CDN_FETCH = re.compile(
    r"^https?://substackcdn\.com/image/fetch/(?:[^/]*/)?(https?(?::|%3A).*)$", re.IGNORECASE
)
_BUCKETEER = re.compile(r"^https?://bucketeer-[^/]+\.s3\.amazonaws\.com", re.IGNORECASE)
_FOOTNOTE_NUMBER = re.compile(r"(\d+)\s*$")


@dataclass
class Body:
    """A converted body, the images it shows (by the address it uses) and what changed."""

    html: str
    images: dict[str, SourceImage] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def original_image_url(url: str) -> str:
    """The original file of an image on Substack's CDN (substackcdn's fetch address with its
    resizing removed; the old bucketeer bucket renamed as Substack did); others unchanged."""
    url = (url or "").strip()
    for _ in range(3):  # a CDN address can wrap another one
        match = _CDN_FETCH.match(url)
        if not match:
            break
        url = unquote(match.group(1))
    return _BUCKETEER.sub("https://substack-post-media.s3.amazonaws.com", url)


def _is_chrome_link(href: str) -> bool:
    """A button that only works on Substack: subscribe, share, gift, comment, account, app."""
    parts = urlsplit(href)
    query = parse_qs(parts.query)
    return (
        query.get("action") == ["share"]
        or "gift" in query
        or parts.path.rstrip("/").lower().endswith(CHROME_PATHS)
    )


def _classes(element: Any) -> set[str]:
    return set((element.get("class") or "").split())


def _attrs(element: Any) -> dict[str, Any]:
    """An element's `data-attrs` JSON (some exports encode it twice); {} if none."""
    raw = element.get("data-attrs") or ""
    for candidate in (raw, html.unescape(raw)):
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return {}


def _replace(element: Any, markup: str) -> None:
    """Put `markup` (HTML, possibly several elements or none) where `element` was."""
    parent = element.getparent()
    if parent is None:
        return
    tail = element.tail or ""
    new = fragment(markup)
    position = parent.index(element)
    if new.text:
        _append_text(parent, position, new.text)
    children = list(new)
    for offset, child in enumerate(children):
        parent.insert(position + offset, child)
    parent.remove(element)
    if tail:
        _append_text(parent, position + len(children), tail)


def _append_text(parent: Any, position: int, text: str) -> None:
    """Add text just before the child at `position` (after the one before it)."""
    if position == 0:
        parent.text = (parent.text or "") + text
    else:
        before = parent[position - 1]
        before.tail = (before.tail or "") + text


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _first(element: Any, xpath: str) -> Any:
    found = element.xpath(xpath)
    return found[0] if found else None


def _class_xpath(name: str) -> str:
    return f".//*[contains(concat(' ', normalize-space(@class), ' '), ' {name} ')]"


class _BodyConverter:
    """One body's conversion: what it noted, the captions of its images, its footnotes."""

    def __init__(self, *, own_host: str = "") -> None:
        self.own_host = own_host.lower()
        self.conversion = Conversion()
        self.captions: dict[str, str] = {}
        self.footnotes: list[tuple[int, str]] = []

    def figure(self, *, src: str, alt: str, caption: str) -> str:
        src = original_image_url(src)
        if src and caption:
            self.captions.setdefault(src, caption)
        return figure_html(src=src, alt=alt, caption=caption, conversion=self.conversion)

    def image_container(self, element: Any) -> str:
        """A captioned image (or a bare image link): one figure per image in it."""
        caption_element = _first(element, ".//figcaption")
        caption = inner_html(caption_element).strip() if caption_element is not None else ""
        figures = []
        for img in element.iter("img"):
            attrs = _attrs(img)
            src = attrs.get("src") or img.get("src") or ""
            alt = img.get("alt") or attrs.get("alt") or ""
            figures.append(self.figure(src=str(src), alt=str(alt), caption=caption))
            caption = ""  # under the first image only
        if not figures and caption:
            self.conversion.note("a caption without its image was kept as text")
            return f"<p>{caption}</p>"
        return "".join(figures)

    def gallery(self, element: Any) -> str:
        """A gallery (its images in `data-attrs`, or as <img> in newer exports): one figure
        per image, the gallery's caption under them all."""
        gallery = _attrs(element).get("gallery") or {}
        gallery = gallery if isinstance(gallery, dict) else {}
        images = [i for i in gallery.get("images") or [] if isinstance(i, dict)]
        images = images or [
            {"src": img.get("src"), "alt": img.get("alt")} for img in element.iter("img")
        ]
        figures = [
            self.figure(src=str(i.get("src") or ""), alt=str(i.get("alt") or ""), caption="")
            for i in images
        ]
        caption: str = escape(str(gallery.get("caption") or ""))
        caption_element = _first(element, ".//figcaption")
        if caption_element is not None:
            caption = caption or inner_html(caption_element).strip()
        return "".join(figures) + (f"<p><em>{caption}</em></p>" if caption else "")

    def embed(self, element: Any) -> str:
        """An embedded post, tweet, video or player as a link card readers can follow."""
        attrs = _attrs(element)
        classes = _classes(element)
        url = str(attrs.get("url") or attrs.get("canonical_url") or "")
        caption = str(attrs.get("title") or "")
        if "tweet" in classes:
            link = _first(element, ".//a[contains(@class, 'tweet-link-top')]")
            url = url or (link.get("href", "") if link is not None else "")
            text = _first(element, _class_xpath("tweet-text"))
            author = _first(element, _class_xpath("tweet-author-name"))
            caption = " — ".join(
                part.text_content().strip()
                for part in (text, author)
                if part is not None and part.text_content().strip()
            )
            url = _without_query(url) if url else ""
        elif "youtube-wrap" in classes and attrs.get("videoId"):
            url = f"https://www.youtube.com/watch?v={attrs['videoId']}"
        elif "vimeo-wrap" in classes and attrs.get("videoId"):
            url = f"https://vimeo.com/{attrs['videoId']}"
        if not url:
            link = element if element.get("href") else _first(element, ".//a[@href]")
            frame = _first(element, ".//iframe[@src]")
            url = (
                link.get("href")
                if link is not None
                else (frame.get("src") if frame is not None else "")
            )
        if not url.startswith(("http://", "https://")):
            self.conversion.note("an embed without an address was removed")
            return ""
        self.conversion.note("embeds (posts, tweets, videos) became links")
        return link_card_html(url=url, caption=escape(caption))

    def button(self, element: Any) -> str:
        """A Substack button: dropped if it only works there (subscribe, share…), else a link."""
        link = _first(element, ".//a[@href]")
        if link is None or _is_chrome_link(link.get("href", "")):
            self.conversion.note("Substack's subscribe, share and comment buttons were removed")
            return ""
        text = link.text_content().strip() or link.get("href")
        return f'<p><a href="{escape(link.get("href"))}">{escape(text)}</a></p>'

    def footnote(self, element: Any) -> str:
        """A footnote, kept for the list at the end; numbered by its id (`footnote-3`), which
        the text's anchor points at, else by the number it shows."""
        number_link = _first(element, ".//a[contains(@class, 'footnote-number')]")
        labels = [element.get("id", "")]
        if number_link is not None:
            labels += [number_link.get("id", ""), number_link.text_content()]
        number = next(
            (int(m.group(1)) for m in map(_FOOTNOTE_NUMBER.search, labels) if m),
            len(self.footnotes) + 1,
        )
        content = _first(element, _class_xpath("footnote-content"))
        self.footnotes.append((number, inner_html(content).strip() if content is not None else ""))
        return ""

    def footnotes_html(self) -> str:
        if not self.footnotes:
            return ""
        self.conversion.note("footnotes are kept as a numbered list at the end")
        self.footnotes.sort(key=lambda footnote: footnote[0])
        first = self.footnotes[0][0]
        start = f' start="{first}"' if first != 1 else ""
        items = "".join(f"<li>{content}</li>" for _number, content in self.footnotes)
        return f"<hr><ol{start}>{items}</ol>"

    def element(self, element: Any) -> str | None:
        """The replacement for one element, or None to leave it (and look inside it)."""
        classes = _classes(element)
        if element.tag in CHROME_TAGS or classes & CHROME_CLASSES:
            if classes & {"subscription-widget-wrap", "subscription-widget", "subscribe-widget"}:
                self.conversion.note("Substack's subscribe boxes were removed")
            return ""
        if "paywall-jump" in classes:
            self.conversion.note("the paywall marker was removed (the whole post came across)")
            return ""
        if "poll-embed" in classes:
            self.conversion.note("a poll could not come across and was removed")
            return ""
        if "footnote" in classes:
            return self.footnote(element)
        if "footnote-anchor" in classes:
            target = _FOOTNOTE_NUMBER.search(element.get("href", ""))
            return escape(f"[{target.group(1) if target else element.text_content().strip()}]")
        if "button-wrapper" in classes:
            return self.button(element)
        if "image-gallery-embed" in classes or "ImageGallery-module__imageGallery" in (
            element.get("class") or ""
        ):
            return self.gallery(element)
        if (
            "captioned-image-container" in classes
            or (element.tag == "a" and "image-link" in classes)
            or (element.tag == "figure" and _first(element, ".//img") is not None)
        ):
            return self.image_container(element)
        if "latex-rendered" in classes:
            expression = str(_attrs(element).get("persistentExpression") or "")
            if not expression:
                return None
            self.conversion.note("LaTeX formulas are kept as their source text")
            return f"<p>{escape(expression)}</p>"
        if "pullquote" in classes:
            return quote_html(lxml_html.tostring(element, encoding="unicode"), pull=True)
        if classes & EMBED_CLASSES or element.tag == "iframe":
            return self.embed(element)
        return None

    def convert(self, markup: str) -> Body:
        root = _root(markup)
        for element in list(root.iter()):
            if element is root or not isinstance(element.tag, str):
                continue
            if not any(ancestor is root for ancestor in element.iterancestors()):
                continue  # inside something already replaced
            replacement = self.element(element)
            if replacement is not None:
                _replace(element, replacement)
        images = self._images(root)
        self._own_links(root)
        _drop_empty_paragraphs(root)
        converted = inner_html(root) + self.footnotes_html()
        # What the sanitiser will remove, not what became a link card (an embed's frame).
        if ACTIVE_CONTENT.search(converted):
            self.conversion.note(ACTIVE_CONTENT_NOTE)
        return Body(html=sanitise_body(converted), images=images, notes=self.conversion.notes)

    def _own_links(self, root: Any) -> None:
        """Links to the publication's own posts become /p/<slug>, which answers here (a 301
        to the post's new address) once the publication's old address no longer does."""
        if not self.own_host:
            return
        for link in root.iter("a"):
            parts = urlsplit(link.get("href", ""))
            if (parts.hostname or "").lower() == self.own_host and parts.path.startswith("/p/"):
                link.set("href", parts.path)
                self.conversion.note("links to the publication's own posts now point here")

    def _images(self, root: Any) -> dict[str, SourceImage]:
        """Every image the body shows, by the (original) address it now uses."""
        images: dict[str, SourceImage] = {}
        for img in root.iter("img"):
            src = original_image_url(img.get("src", ""))
            if not src:
                continue
            img.set("src", src)
            images.setdefault(
                src,
                SourceImage(url=src, alt=img.get("alt", ""), caption=self.captions.get(src, "")),
            )
        return images


def _drop_empty_paragraphs(root: Any) -> None:
    """Substack's editor leaves empty paragraphs (and removing its chrome leaves more)."""
    for paragraph in list(root.iter("p")):
        if len(paragraph) == 0 and not (paragraph.text or "").strip():
            _replace(paragraph, "")


def _root(markup: str) -> Any:
    """The post's elements under one <div>, whether the file is a fragment or a page."""
    if re.search(r"<body[\s>]", markup or "", re.IGNORECASE):
        body = lxml_html.document_fromstring(markup).body
        body.tag = "div"
        return body
    return fragment(markup)


def body_convert(markup: str, *, own_host: str = "") -> Body:
    """A Substack post's HTML as the site's sanitised body, its images and the notes;
    `own_host` is the publication's address on Substack (its links to itself come here)."""
    return _BodyConverter(own_host=own_host).convert(markup)
