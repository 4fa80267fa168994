"""Rendering an issue, once: its HTML (CSS inlined) and text, with per-recipient markers.

Contract: `issue_render` is the only trip through the templates for a send; the
result (frozen on the issue when sending starts) carries UNSUBSCRIBE_MARK,
PREFERENCES_MARK and GREETING_MARK where each recipient's values go, and the
skeleton (skeleton.py) substitutes them as strings. `sample_personalise` fills
them for previews, tests and the web archive with nobody's personal links.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import unescape

import css_inline
from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.html import strip_tags
from django.utils.translation import gettext
from django_prose_editor.fields import ProseEditorField

from outlet.core.language import recipient_language
from outlet.newsletters.models import Issue

#: Gmail clips HTML bodies above about 102 KB; stay clearly under it.
HTML_SIZE_LIMIT = 100 * 1024

# Per-recipient markers in the rendered issue, replaced by plain string substitution.
UNSUBSCRIBE_MARK = "@@UNSUBSCRIBE_URL@@"
PREFERENCES_MARK = "@@PREFERENCES_URL@@"
GREETING_MARK = "@@GREETING@@"

_inliner = css_inline.CSSInliner(keep_style_tags=False, load_remote_stylesheets=False)


@dataclass(frozen=True)
class RenderedIssue:
    html: str
    text: str


def issue_render(*, issue: Issue) -> RenderedIssue:
    """The issue's HTML (CSS inlined) and plain text, with per-recipient markers, in the
    language of the newsletter's readers (core.language.recipient_language)."""
    with translation.override(recipient_language(obj=issue.newsletter)):
        return _issue_render(issue)


def _issue_render(issue: Issue) -> RenderedIssue:
    items = [
        issue_article.article
        for issue_article in issue.issue_articles.select_related("article__section")
    ]
    context = {
        "issue": issue,
        "newsletter": issue.newsletter,
        "articles": items,
        "appeal": issue.appeal,
        "OUTLET_NAME": settings.OUTLET_NAME,
        "OUTLET_TAGLINE": settings.OUTLET_TAGLINE,
        "OUTLET_POSTAL_ADDRESS": settings.OUTLET_POSTAL_ADDRESS,
        "SITE_URL": settings.SITE_URL,
        "web_url": f"{settings.SITE_URL}{issue.get_absolute_url()}" if issue.pk else "",
        # A gift made from the issue's donate link is attributed to it (measuring/report.py).
        "donate_url": f"{settings.SITE_URL}/donate/?source={issue_source(issue)}"
        if issue.pk
        else f"{settings.SITE_URL}/donate/",
        "unsubscribe_url": UNSUBSCRIBE_MARK,
        "preferences_url": PREFERENCES_MARK,
        "greeting": GREETING_MARK,
        "intro_html": rich_text_for_email(issue.intro),
        "body_html": rich_text_for_email(issue.body),
        "intro_text": html_to_text(issue_text_sanitise(issue.intro)),
        "body_text": html_to_text(issue_text_sanitise(issue.body)),
    }
    html = _inliner.inline(render_to_string("emails/newsletters/issue.html", context))
    text = render_to_string("emails/newsletters/issue.txt", context)
    return RenderedIssue(html=html, text=text)


_BLOCK_END = re.compile(r"</(p|h[1-6]|li|blockquote)>|<br\s*/?>", re.IGNORECASE)
_LINK = re.compile(r'<a\s[^>]*href="([^"]+)"[^>]*>(.*?)</a>', re.IGNORECASE | re.DOTALL)


def issue_source(issue: Issue) -> str:
    """The donation `source` of gifts made from this issue's donate links."""
    return f"issue-{issue.pk}"


def issue_text_sanitise(html: str) -> str:
    """An issue's rich text cleaned to its editor's allowlist (nh3, via django-prose-editor).

    The admin form cleans it when it is saved; cleaning again where it is rendered
    covers any other writer (a shell, a data migration, a future API)."""
    field = Issue._meta.get_field("intro")
    assert isinstance(field, ProseEditorField)
    return field.sanitize(html or "")


def rich_text_for_email(html: str) -> str:
    """Editor text, cleaned, ready for a narrow screen: the editor's non-breaking spaces
    (typed or pasted) would otherwise hold whole sentences on one line on a phone."""
    return issue_text_sanitise(html).replace("&nbsp;", " ").replace("\xa0", " ")


def html_to_text(html: str) -> str:
    """Sanitised rich text as plain text: paragraphs kept, links written out."""
    text = _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})", html or "")
    text = strip_tags(_BLOCK_END.sub("\n\n", text))
    text = unescape(text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def greeting_for(name: str) -> str:
    """The issue's salutation for one subscriber, in the active language."""
    first = (name or "").strip().split(" ")[0]
    if first:
        return gettext("Hi %(first_name)s,") % {"first_name": first}
    return gettext("Hello,")


def sample_personalise(content: str, *, html: bool) -> str:
    """A copy for previews, test sends and the web archive: no one's personal links."""
    preferences = f"{settings.SITE_URL}/newsletter/"
    return (
        content.replace(UNSUBSCRIBE_MARK, preferences)
        .replace(PREFERENCES_MARK, preferences)
        .replace(GREETING_MARK, gettext("Hello,"))
    )
