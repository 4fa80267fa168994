"""Ghost's cards (Koenig editor) as the site's own markup, whichever form they come in.

A card is a name and a payload: a mobiledoc `["bookmark", {…}]`, a lexical node
`{"type": "bookmark", …}` (the same fields, beside `type` and `version`), or the
HTML Ghost rendered for it (`rendered.py` reads the payload back out of it). One
function turns each into what the site's editor makes: an image keeps its alt
text and caption, a bookmark or an embed becomes a link card (no third-party
script), the alternative quote style a pull quote. A card with no counterpart
keeps its text as sanitised HTML and is named in the notes, never dropped
silently. Everything returned here still goes through the site's sanitiser.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from django.utils.html import escape
from markdown_it import MarkdownIt

from ..markup import Conversion, figure_html, fragment, link_card_html

Payload = Mapping[str, Any]

_markdown = MarkdownIt("commonmark", {"html": True}).enable("table").enable("strikethrough")


def _text(payload: Payload, name: str) -> str:
    value = payload.get(name)
    return value.strip() if isinstance(value, str) else ""


def _paragraphs(markup: str) -> str:
    """HTML that may be bare inline text (a caption, a callout) as at least one paragraph."""
    markup = markup.strip()
    if not markup:
        return ""
    return markup if markup.startswith("<p") or markup.startswith("<h") else f"<p>{markup}</p>"


def _link(url: str, text: str) -> str:
    if not url:
        return f"<p>{escape(text)}</p>" if text else ""
    return f'<p><a href="{escape(url)}">{escape(text or url)}</a></p>'


def plain_lines(text: str) -> str:
    """Preformatted text (code) as one paragraph keeping its lines: the site has no <pre>."""
    lines = [escape(line) for line in text.strip("\n").splitlines()]
    return f"<p>{'<br>'.join(lines)}</p>" if any(line.strip() for line in lines) else ""


def _image(payload: Payload, conversion: Conversion) -> str:
    return figure_html(
        src=_text(payload, "src"),
        alt=_text(payload, "alt"),
        caption=_text(payload, "caption"),
        conversion=conversion,
    )


def _gallery(payload: Payload, conversion: Conversion) -> str:
    images = payload.get("images")
    figures = [
        _image(image, conversion)
        for image in (images if isinstance(images, list) else [])
        if isinstance(image, Mapping)
    ]
    caption = _text(payload, "caption")
    return "".join(figures) + (f"<p><em>{caption}</em></p>" if caption else "")


_PLAYER = re.compile(
    r"^https?://(?:www\.)?(?:youtube(?:-nocookie)?\.com/embed/(?P<youtube>[\w-]+)"
    r"|player\.vimeo\.com/video/(?P<vimeo>\d+))"
)


def _page_of_player(url: str) -> str:
    """A video player's frame address as the video's own page, which a reader can open."""
    match = _PLAYER.match(url)
    if match and match["youtube"]:
        return f"https://www.youtube.com/watch?v={match['youtube']}"
    if match and match["vimeo"]:
        return f"https://vimeo.com/{match['vimeo']}"
    return url


def _embed(payload: Payload, conversion: Conversion) -> str:
    url = _text(payload, "url")
    if not url:
        # Only the rendered embed: the address is its frame's (a player) or its last link's.
        root = fragment(_text(payload, "html"))
        frames = [e.get("src", "") for e in root.iter("iframe") if e.get("src")]
        links = [e.get("href", "") for e in root.iter("a") if e.get("href")]
        url = _page_of_player((frames or links[-1:] or [""])[0])
    if _text(payload, "html"):
        conversion.note("an embed became a link card (no third-party script)")
    return link_card_html(url=url, caption=_text(payload, "caption"))


def _bookmark(payload: Payload, conversion: Conversion) -> str:
    metadata = payload.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else payload
    title = _text(metadata, "title")
    caption = _text(payload, "caption")
    described = " — ".join(filter(None, (escape(title), caption)))
    return link_card_html(url=_text(payload, "url"), caption=described)


def _callout(payload: Payload, conversion: Conversion) -> str:
    emoji = escape(_text(payload, "calloutEmoji"))
    text = _paragraphs(_text(payload, "calloutText"))
    if emoji and text.startswith("<p>"):
        text = f"<p>{emoji} {text[3:]}"
    elif emoji:
        text = f"<p>{emoji}</p>{text}"
    return f"<blockquote>{text}</blockquote>" if text else ""


def _toggle(payload: Payload, conversion: Conversion) -> str:
    heading = _text(payload, "heading")
    return (f"<h3>{heading}</h3>" if heading else "") + _paragraphs(_text(payload, "content"))


def _button(payload: Payload, conversion: Conversion) -> str:
    return _link(_text(payload, "buttonUrl"), _text(payload, "buttonText"))


def _header(payload: Payload, conversion: Conversion) -> str:
    header = _text(payload, "header") or _text(payload, "heading")
    subheader = _text(payload, "subheader") or _text(payload, "subheading")
    return (
        (f"<h2>{header}</h2>" if header else "")
        + (f"<p>{subheader}</p>" if subheader else "")
        + _link(_text(payload, "buttonUrl"), _text(payload, "buttonText"))
    )


def _product(payload: Payload, conversion: Conversion) -> str:
    title = _text(payload, "productTitle")
    image = _text(payload, "productImageSrc")
    return (
        (f"<h3>{title}</h3>" if title else "")
        + (figure_html(src=image, alt="", conversion=conversion) if image else "")
        + _paragraphs(_text(payload, "productDescription"))
        + _link(_text(payload, "productUrl"), _text(payload, "productButton"))
    )


def _media(payload: Payload, conversion: Conversion) -> str:
    """A video, audio or file card: a link to the file, as the WordPress converter does."""
    title = _text(payload, "title") or _text(payload, "fileTitle")
    caption = _text(payload, "caption") or _text(payload, "fileCaption")
    return link_card_html(
        url=_text(payload, "src"), caption=" — ".join(filter(None, (escape(title), caption)))
    )


def _code(payload: Payload, conversion: Conversion) -> str:
    caption = _text(payload, "caption")
    return plain_lines(str(payload.get("code") or "")) + (
        f"<p><em>{caption}</em></p>" if caption else ""
    )


def markdown_html(text: str) -> str:
    """Markdown as Ghost rendered it (CommonMark, HTML allowed: the sanitiser cleans it)."""
    return _markdown.render(text or "")


def _markdown_card(payload: Payload, conversion: Conversion) -> str:
    return markdown_html(str(payload.get("markdown") or ""))


def _html(payload: Payload, conversion: Conversion) -> str:
    return str(payload.get("html") or "")


def _left_out(why: str) -> Callable[[Payload, Conversion], str]:
    def render(payload: Payload, conversion: Conversion) -> str:
        conversion.note(why)
        return ""

    return render


CARDS: dict[str, Callable[[Payload, Conversion], str]] = {
    "image": _image,
    "gallery": _gallery,
    "embed": _embed,
    "bookmark": _bookmark,
    "callout": _callout,
    "toggle": _toggle,
    "button": _button,
    "header": _header,
    "product": _product,
    "video": _media,
    "audio": _media,
    "file": _media,
    "code": _code,
    "codeblock": _code,
    "markdown": _markdown_card,
    "card-markdown": _markdown_card,
    "html": _html,
    "hr": lambda payload, conversion: "<hr>",
    "horizontalrule": lambda payload, conversion: "<hr>",
    # Where Ghost's members-only part began; a held post is a draft here anyway.
    "paywall": lambda payload, conversion: "",
    "signup": _left_out("a Ghost sign-up form was left out (the site has its own)"),
    "email": _left_out("text Ghost showed only in the newsletter email was left out"),
    "email-cta": _left_out("text Ghost showed only in the newsletter email was left out"),
    "collection": _left_out("a Ghost list of posts (collection card) was left out"),
}
#: Payload fields that hold settings, not content (colours, layout, sizes).
_SETTING_FIELDS = {"type", "version", "cardWidth", "alignment", "backgroundColor", "layout"}


def unknown_card_html(name: str, payload: Payload, *, conversion: Conversion) -> str:
    """A card we have no rule for: its text and links kept, and the editors told."""
    conversion.note(f"the Ghost card “{name}” was kept as sanitised HTML; check how it reads")
    if _text(payload, "html"):
        return _text(payload, "html")
    parts = []
    for key, value in payload.items():
        if key in _SETTING_FIELDS or not isinstance(value, str) or not value.strip():
            continue
        value = value.strip()
        if value.startswith(("http://", "https://")):
            parts.append(link_card_html(url=value))
        elif " " in value or value.startswith("<"):
            parts.append(_paragraphs(value))
    return "".join(parts)


def card_html(name: str, payload: Payload, *, conversion: Conversion) -> str:
    """One card as site markup (before sanitising)."""
    render = CARDS.get(name)
    if render is None:
        return unknown_card_html(name, payload, conversion=conversion)
    return render(payload, conversion)
