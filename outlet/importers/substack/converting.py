"""Pure conversions of a Substack export's rows into the site's platform-neutral records.

A function of its arguments (no database, no files), so a fixture test can call
it: one posts.csv row plus its HTML become a `SourcePost` (body through
body.py, status, slug, dates, the old /p/<slug> addresses). The export names no
author, so every post gets the one `SourcePerson` the import was given.
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass

from django.utils.text import slugify

from outlet.articles.models import Article
from outlet.articles.sanitising import sanitise_body

from ..markup import link_card_html
from ..source import SourcePerson, SourcePost
from .body import body_convert
from .reading import Row

#: Post types that are not articles, and why they stay behind.
SKIPPED_TYPES = {"thread": "a Substack discussion thread, not an article"}
#: Audiences that were not everyone's on Substack, and why the post is held as a draft.
HELD_AUDIENCES = {
    "only_paid": "for paying subscribers only on Substack",
    "founding": "for founding members only on Substack",
    "only_free": "for signed-in subscribers only on Substack",
}
PUBLIC_AUDIENCES = {"", "everyone"}
TRUE_VALUES = {"true", "t", "1", "yes"}


@dataclass(frozen=True)
class StatusChoice:
    status: str
    #: Why the post is kept from readers although Substack showed it to some ("" if not).
    held_because: str = ""


def numeric_id(post_id: str) -> str:
    """Substack's stable id of a post (`123456` of `123456.my-slug`): the slug part changes
    when the writer renames the post, the number does not."""
    return post_id.split(".", 1)[0]


def substack_slug(post_id: str) -> str:
    """The slug Substack showed at /p/<slug> ('' for a draft that never had one)."""
    return post_id.split(".", 1)[1] if "." in post_id else ""


def slug_derive(*, post_id: str, title: str) -> str:
    """The post's slug here: Substack's, cleaned; else one made from the title and id."""
    cleaned = slugify(substack_slug(post_id))[:200].strip("-")
    if cleaned:
        return cleaned
    from_title = slugify(title or "")[:180].strip("-")
    number = numeric_id(post_id)
    return f"{from_title}-{number}" if from_title else f"post-{number}"


def date_parse(value: str) -> dt.datetime | None:
    """Substack's ISO 8601 times (`2019-07-26T20:48:19.814Z`); a time without a zone is UTC."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def status_choose(
    *, is_published: str, audience: str, publish_at: dt.datetime | None, now: dt.datetime
) -> StatusChoice:
    """Only what Substack showed everyone is public here; writing for subscribers waits
    for an editor (never made public by surprise)."""
    if (is_published or "").strip().lower() not in TRUE_VALUES:
        return StatusChoice(Article.Status.DRAFT)
    audience = (audience or "").strip().lower()
    if audience not in PUBLIC_AUDIENCES:
        return StatusChoice(
            Article.Status.DRAFT,
            HELD_AUDIENCES.get(audience, f"audience “{audience}” on Substack"),
        )
    if publish_at is not None and publish_at > now:
        return StatusChoice(Article.Status.SCHEDULED)
    return StatusChoice(Article.Status.PUBLISHED)


def skip_reason(row: Row) -> str:
    """Why a row does not come across at all ('' when it does)."""
    return SKIPPED_TYPES.get(row.type.strip().lower(), "")


def old_paths(post_id: str) -> list[str]:
    """Where readers' links to the post on Substack arrive once the domain points here."""
    slug = substack_slug(post_id)
    if not slug:
        return []
    return [f"/p/{slug}", f"/p/{slug}/", f"/p/{slug}/comments"]


def author_for(name: str) -> SourcePerson:
    """The one person every post of the export is by (Substack's export names none).

    Remembered by the name in any script (`李明` and `王芳` are two people, though
    neither makes a Latin slug), so a second publication never renames the first's.
    """
    slug = slugify(name)[:120] or "staff"
    return SourcePerson(
        source_id=slugify(name, allow_unicode=True)[:120] or slug, name=name[:120], slug=slug
    )


def post_convert(
    *, row: Row, html_text: str, author: SourcePerson, now: dt.datetime, own_host: str = ""
) -> SourcePost:
    """One row and its HTML as a SourcePost, its body sanitised."""
    kind = row.type.strip().lower()
    body = body_convert(html_text, own_host=own_host)
    notes = list(body.notes)
    prefix = ""
    if kind == "podcast":
        if row.podcast_url.lower().startswith(("https://", "http://")):
            prefix = link_card_html(url=row.podcast_url)
            notes.append("a podcast episode: its audio stays at its address, linked at the top")
        else:
            notes.append("a podcast episode whose audio address is not in the export")
    elif kind not in ("", "newsletter", "page"):
        notes.append(f"Substack's “{kind}” post imported as an article")
    publish_at = date_parse(row.post_date)
    status = status_choose(
        is_published=row.is_published, audience=row.audience, publish_at=publish_at, now=now
    )
    title = html.unescape(row.title).strip()
    return SourcePost(
        source_id=numeric_id(row.post_id),
        kind="page" if kind == "page" else "article",
        title=(title or substack_slug(row.post_id).replace("-", " ") or row.post_id)[:200],
        slug=slug_derive(post_id=row.post_id, title=title),
        body=sanitise_body(prefix) + body.html if prefix else body.html,
        status=status.status,
        held_because=status.held_because,
        publish_at=publish_at,
        excerpt=html.unescape(row.subtitle).strip(),
        authors=[author],
        images=body.images,
        old_paths=old_paths(row.post_id),
        notes=notes,
    )
