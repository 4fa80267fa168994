"""The allowlist article bodies are cleaned against on every save, whoever typed them.

What the editor's toolbar offers (models.BODY_EDITOR_EXTENSIONS) is a convenience;
this allowlist is the authority. Anything outside it is dropped: scripts with
their content, event handlers, style attributes, classes other than the pull
quote, and URLs that are not http(s), mailto or relative.
"""

import re

import nh3

ALLOWED_TAGS = {
    "p", "br", "hr", "h2", "h3", "strong", "em", "b", "i", "a",
    "ul", "ol", "li", "blockquote", "figure", "figcaption", "img",
    # Tables: imported archives (importers/) carry data tables that must not flatten to text.
    "table", "caption", "thead", "tbody", "tfoot", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height"},
    "ol": {"start"},
    "th": {"colspan", "rowspan", "scope"},
    "td": {"colspan", "rowspan"},
}
ALLOWED_CLASSES = {"blockquote": {"pull-quote"}, "figure": {"figure"}}
URL_SCHEMES = {"http", "https", "mailto"}

_cleaner = nh3.Cleaner(
    tags=ALLOWED_TAGS,
    clean_content_tags={"script", "style", "iframe", "object", "embed", "template", "noscript"},
    attributes=ALLOWED_ATTRIBUTES,
    allowed_classes=ALLOWED_CLASSES,
    url_schemes=URL_SCHEMES,
    link_rel="noopener noreferrer",
    strip_comments=True,
)

# A body sits under the article's h1 and its h2 subheadings: keep the outline whole
# by demoting a pasted h1 to h2 and deeper headings to h3 instead of dropping them.
_HEADING = re.compile(r"<(/?)h([1-6])\b", re.IGNORECASE)


def _heading_level(match: re.Match[str]) -> str:
    level = int(match.group(2))
    return f"<{match.group(1)}h{2 if level <= 2 else 3}"


def sanitise_body(html: str) -> str:
    """Clean an article body to the allowlist; an empty editor document becomes ''."""
    cleaned = _cleaner.clean(_HEADING.sub(_heading_level, html or "")).strip()
    return "" if cleaned in ("<p></p>", "<p><br></p>") else cleaned
