"""Pure conversions of WordPress export values into what the site stores.

Everything here is a function of its arguments (no database, no files), so a
fixture test can call it: the body (blocks or classic text, shortcodes, then the
site's sanitiser), the slug, the status, the publish time and the SEO fields.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote
from zoneinfo import ZoneInfo

from django.utils.text import slugify

from outlet.articles.models import Article
from outlet.articles.sanitising import sanitise_body

from ..markup import ACTIVE_CONTENT, ACTIVE_CONTENT_NOTE, Conversion
from .autop import wpautop
from .blocks import blocks_convert, has_blocks
from .shortcodes import Attachment, shortcodes_convert

#: WordPress statuses that never reach the site, and why (the report says so).
SKIPPED_STATUSES = {
    "trash": "in the WordPress trash",
    "auto-draft": "an empty auto-draft",
    "inherit": "a revision",
}
_WP_ZERO_DATE = "0000-00-00 00:00:00"
_SEO_VARIABLE = re.compile(r"%%?[a-z_]+%%?")

#: SEO plugins' post meta keys, in order of preference.
SEO_TITLE_KEYS = ("_yoast_wpseo_title", "rank_math_title", "_aioseo_title")
SEO_DESCRIPTION_KEYS = ("_yoast_wpseo_metadesc", "rank_math_description", "_aioseo_description")
CANONICAL_KEYS = ("_yoast_wpseo_canonical", "rank_math_canonical_url")


@dataclass(frozen=True)
class StatusChoice:
    status: str
    #: Why the item is kept from readers although WordPress showed it to some ("" if not).
    held_because: str = ""


def body_convert(
    content: str, *, attachments: Mapping[int, Attachment] | None = None
) -> tuple[str, Conversion]:
    """A post's stored content as the site's sanitised body, with what the conversion noted.

    Block documents are converted block by block; classic posts get their shortcodes
    replaced and then WordPress's paragraphs (wpautop), as WordPress would show them.
    """
    conversion = Conversion()
    attachments = attachments or {}
    if has_blocks(content):
        converted = blocks_convert(content, attachments=attachments, conversion=conversion)
        converted = shortcodes_convert(converted, attachments=attachments, conversion=conversion)
    else:
        converted = wpautop(
            shortcodes_convert(content or "", attachments=attachments, conversion=conversion)
        )
    if ACTIVE_CONTENT.search(converted):
        conversion.note(ACTIVE_CONTENT_NOTE)
    return sanitise_body(converted), conversion


def slug_derive(*, slug: str, title: str, post_id: int) -> str:
    """The post's slug, or one made from its title (WordPress exports drafts without one)."""
    # WordPress keeps non-ASCII slugs percent-encoded (caf%c3%a9): decode, then clean.
    cleaned = slugify(unquote(slug or ""), allow_unicode=False)[:200].strip("-")
    if cleaned:
        return cleaned
    from_title = slugify(title or "")[:180].strip("-")
    return f"{from_title}-{post_id}" if from_title else f"post-{post_id}"


def status_choose(
    *, wp_status: str, password: str, publish_at: dt.datetime | None, now: dt.datetime
) -> StatusChoice:
    """The site's status for a WordPress status: only what WordPress showed everyone is public."""
    if password and wp_status in ("publish", "future"):
        # Scheduled ones too: WordPress would have asked for the password once it went live.
        return StatusChoice(Article.Status.DRAFT, "password-protected on WordPress")
    if wp_status == "publish":
        return StatusChoice(Article.Status.PUBLISHED)
    if wp_status == "future":
        if publish_at is not None and publish_at > now:
            return StatusChoice(Article.Status.SCHEDULED)
        return StatusChoice(Article.Status.PUBLISHED)
    if wp_status == "private":
        return StatusChoice(Article.Status.DRAFT, "private on WordPress")
    return StatusChoice(Article.Status.DRAFT)


def date_parse(*, gmt: str, local: str, site_timezone: str) -> dt.datetime | None:
    """The publish moment: the export's GMT time, else its local time in the site's zone."""
    for value, zone in ((gmt, dt.UTC), (local, ZoneInfo(site_timezone))):
        value = (value or "").strip()
        if not value or value == _WP_ZERO_DATE:
            continue
        try:
            return dt.datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=zone)
        except ValueError:
            continue
    return None


def first_meta(meta: Mapping[str, str], keys: tuple[str, ...]) -> str:
    return next((meta[key].strip() for key in keys if (meta.get(key) or "").strip()), "")


def seo_fields(meta: Mapping[str, str]) -> dict[str, str]:
    """SEO title and description from Yoast, Rank Math or All in One SEO meta.

    Their `%%title%%`-style variables are templates WordPress filled in at display
    time; a value still holding one is left out rather than shown to readers raw.
    """
    title = first_meta(meta, SEO_TITLE_KEYS)
    description = first_meta(meta, SEO_DESCRIPTION_KEYS)
    return {
        "seo_title": "" if _SEO_VARIABLE.search(title) else title[:200],
        "seo_description": "" if _SEO_VARIABLE.search(description) else description[:300],
    }
