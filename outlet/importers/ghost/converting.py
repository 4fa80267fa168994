"""Pure conversions of a Ghost export's rows into the platform-neutral `SourcePost`.

Everything here is a function of its arguments (no database, no files), so a
fixture test can call it. `post_convert` takes one row of the posts table and
the export's index (its people, tags, posts_meta) and returns the post the
writer stores: body in the site's sanitised markup (from Ghost's rendered
`html`, else its lexical or mobiledoc document), status (members-only and
email-only writing held as drafts, with the reason), UTC publish time, people,
section and tags, SEO and social fields, featured image, and the old addresses
readers' links arrive at (Ghost's `/<slug>/`, `/<slug>/amp/` and `/p/<uuid>/`).
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from django.utils.html import escape, strip_tags
from django.utils.text import slugify

from outlet.articles.models import Article
from outlet.articles.sanitising import sanitise_body

from ..markup import ACTIVE_CONTENT, ACTIVE_CONTENT_NOTE, Conversion, fragment
from ..source import SourceImage, SourcePerson, SourcePost, SourceTerm
from .cards import markdown_html
from .documents import DocumentUnreadable, lexical_html, mobiledoc_html
from .reading import ExportIndex, Tag, User, source_id
from .rendered import rendered_html

#: Ghost writes its own address as this placeholder so an export can move between domains.
GHOST_URL = "__GHOST_URL__"
#: The old site's own feed, to this site's.
SITE_FEEDS = {"/rss/": "/feed/"}


def site_prefix(site_url: str) -> str:
    """The path the Ghost site lived under ('' at a domain's root, '/blog' in a folder)."""
    return (urlsplit(site_url).path or "").rstrip("/")


def url_resolve(value: Any, *, site_url: str) -> str:
    """A stored value with Ghost's `__GHOST_URL__` placeholder made the old site's address.

    Without a known address (most exports do not say) the placeholder goes, leaving a
    path on the site (`/content/images/…`, `/my-post/`): old links then reach the
    redirects, and `--media-dir` still finds the images.
    """
    return value.replace(GHOST_URL, site_url.rstrip("/")) if isinstance(value, str) else ""


def date_parse(value: Any) -> dt.datetime | None:
    """A Ghost time in UTC: ISO 8601 (`2023-01-05T10:00:00.000Z`), `2015-01-05 10:00:00`
    (Ghost 1.x, UTC) or milliseconds since 1970 (Ghost 0.x)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC)
        except (ValueError, OverflowError, OSError):  # past any year a calendar holds
            return None
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


#: Characters HTML parsers refuse (control characters, lone surrogates) that JSON can carry.
_NOT_IN_HTML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _field(post: Mapping[str, Any], name: str) -> str:
    """A text field of a post row ('' when empty); anything but text is a malformed row."""
    value = post.get(name)
    if value is None or isinstance(value, str):
        return _NOT_IN_HTML.sub("", value or "")
    raise ValueError(f"its “{name}” is {type(value).__name__}, where Ghost writes text")


def _flag(value: Any) -> bool:
    """Ghost's booleans: JSON true or 1 (MySQL's tinyint), also as text ("True" is how the
    index keeps a JSON true of posts_meta)."""
    return value is True or str(value).strip().lower() in ("1", "true")


def status_choose(
    *,
    status: str,
    visibility: str,
    email_only: bool,
    publish_at: dt.datetime | None,
    now: dt.datetime,
) -> tuple[str, str]:
    """The site's status for a Ghost post, and why it is held back ('' if it is not).

    Only what Ghost showed everyone becomes public: writing for members or paying
    members stays a draft (never made public by surprise), as does a post Ghost
    only sent as an email.
    """
    if status == "sent" or email_only:
        return Article.Status.DRAFT, "sent by email only on Ghost, never published on its site"
    if status not in ("published", "scheduled"):
        return Article.Status.DRAFT, "" if status == "draft" else f"“{status}” on Ghost"
    if visibility and visibility != "public":
        return (
            Article.Status.DRAFT,
            f"for members only on Ghost (visibility “{visibility}”): publish it by hand "
            "if it should be free to read here",
        )
    if publish_at is not None and publish_at > now:
        return Article.Status.SCHEDULED, ""
    return Article.Status.PUBLISHED, ""


def _paragraphs_from_text(text: str) -> str:
    blocks = [b.strip() for b in re.split(r"\n\s*\n", text or "") if b.strip()]
    return "".join(f"<p>{escape(b).replace(chr(10), '<br>')}</p>" for b in blocks)


def body_convert(post: Mapping[str, Any], *, site_url: str = "") -> tuple[str, Conversion]:
    """A post's body as the site's sanitised markup, with what the conversion noted.

    Ghost's rendered `html` is preferred (what readers saw); without it the lexical
    (Ghost 5+) or mobiledoc (Ghost 1–4) document is rendered card by card, then
    Ghost 0.x's markdown, then the plain text.
    """
    conversion = Conversion()

    def stored(name: str) -> str:
        return _NOT_IN_HTML.sub("", url_resolve(post.get(name), site_url=site_url))

    converted = ""
    if stored("html").strip():
        converted = rendered_html(stored("html"), conversion=conversion)
    else:
        for name, render in (("lexical", lexical_html), ("mobiledoc", mobiledoc_html)):
            if not stored(name).strip():
                continue
            try:
                converted = render(stored(name), conversion=conversion)
                break
            except DocumentUnreadable as exc:
                conversion.note(f"its {name} document could not be read ({exc})")
        if not converted and stored("markdown").strip():
            converted = markdown_html(stored("markdown"))
        if not converted and stored("plaintext").strip():
            converted = _paragraphs_from_text(stored("plaintext"))
            conversion.note("only its plain text was in the export")
    if ACTIVE_CONTENT.search(converted):
        conversion.note(ACTIVE_CONTENT_NOTE)
    return sanitise_body(_NOT_IN_HTML.sub("", converted)), conversion


def body_images(body: str) -> dict[str, SourceImage]:
    """The body's images by the address it uses, with their alt text and caption."""
    images: dict[str, SourceImage] = {}
    for img in fragment(body).iter("img"):
        src = img.get("src", "")
        parent = img.getparent()
        caption = next(parent.iter("figcaption"), None) if parent.tag == "figure" else None
        if src and src not in images:
            images[src] = SourceImage(
                url=src,
                alt=img.get("alt", ""),
                caption=caption.text_content().strip() if caption is not None else "",
            )
    return images


def person_convert(user: User, *, prefix: str = "") -> SourcePerson:
    """A Ghost staff user; their old archive `/author/<slug>/` and its `rss/` feed."""
    return SourcePerson(
        source_id=user.id,
        name=user.name[:120],
        slug=user.slug,
        email=user.email,
        bio=user.bio,
        old_paths=(f"{prefix}/author/{user.slug}/",) if user.slug else (),
        old_feed_paths=(f"{prefix}/author/{user.slug}/rss/",) if user.slug else (),
    )


def term_convert(tag: Tag, *, prefix: str = "") -> SourceTerm:
    """A public Ghost tag; its old archive `/tag/<slug>/` and its `rss/` feed."""
    return SourceTerm(
        source_id=tag.id,
        name=tag.name[:80],
        slug=tag.slug,
        description=tag.description,
        old_paths=(f"{prefix}/tag/{tag.slug}/",) if tag.slug else (),
        old_feed_paths=(f"{prefix}/tag/{tag.slug}/rss/",) if tag.slug else (),
    )


def slug_derive(*, slug: str, title: str, post_id: str) -> str:
    cleaned = slugify(unquote(slug or ""))[:200].strip("-")
    return cleaned or slugify(title or "")[:180].strip("-") or f"post-{post_id}"


def _meta(post: Mapping[str, Any], index: ExportIndex, name: str) -> str:
    """A posts_meta field (Ghost 3+), else the same field on the post (older exports)."""
    value = index.posts_meta.get(source_id(post.get("id")), {}).get(name) or post.get(name)
    return value.strip() if isinstance(value, str) else ""


def _first(post: Mapping[str, Any], index: ExportIndex, *names: str) -> str:
    return next((value for name in names if (value := _meta(post, index, name))), "")


def post_convert(post: Mapping[str, Any], *, index: ExportIndex, now: dt.datetime) -> SourcePost:
    """One row of Ghost's posts table as the post the writer stores."""
    post = {k: _NOT_IN_HTML.sub("", v) if isinstance(v, str) else v for k, v in post.items()}
    post_id = source_id(post.get("id"))
    if not post_id:  # what the import remembers it by: id-less rows would be one item
        raise ValueError("it has no id")
    site_url = index.site_url
    prefix = site_prefix(site_url)
    kind: Literal["article", "page"] = (
        "page" if post.get("type") == "page" or _flag(post.get("page")) else "article"
    )
    publish_at = date_parse(post.get("published_at")) or (
        date_parse(post.get("created_at"))
        if post.get("status") in ("published", "scheduled")
        else None
    )
    status, held_because = status_choose(
        status=_field(post, "status") or "draft",
        visibility=_field(post, "visibility") or "public",
        email_only=_flag(index.posts_meta.get(post_id, {}).get("email_only")),
        publish_at=publish_at,
        now=now,
    )
    body, conversion = body_convert(post, site_url=site_url)
    if _text(post.get("codeinjection_head")) or _text(post.get("codeinjection_foot")):
        conversion.note("its code injection (scripts Ghost added to its page) was left out")
    tags = list(index.tags_of(post_id))
    # Ghost's primary tag is the post's first tag, when that one is public.
    section = tags[0] if tags and not tags[0].internal else None
    users = index.authors_of(post_id)
    if not users and source_id(post.get("author_id")) in index.users:  # Ghost before 1.22
        users = [index.users[source_id(post.get("author_id"))]]
    image_url = url_resolve(post.get("feature_image") or post.get("image"), site_url=site_url)
    ghost_slug = _field(post, "slug")
    title = _field(post, "title")
    old_paths = [f"{prefix}/{ghost_slug}/"] if ghost_slug else []
    if ghost_slug and kind == "article":
        old_paths.append(f"{prefix}/{ghost_slug}/amp/")
    if post.get("uuid"):
        old_paths.append(f"{prefix}/p/{post['uuid']}/")
    return SourcePost(
        source_id=post_id,
        kind=kind,
        title=title.strip()[:200],
        slug=slug_derive(slug=ghost_slug, title=title, post_id=post_id),
        body=body,
        status=status,
        publish_at=publish_at,
        excerpt=_field(post, "custom_excerpt").strip()[:400],
        held_because=held_because,
        authors=[person_convert(user, prefix=prefix) for user in users],
        section=term_convert(section, prefix=prefix) if section else None,
        tags=[
            term_convert(tag, prefix=prefix)
            for tag in tags
            if tag is not section and not tag.internal
        ],
        featured=_flag(post.get("featured")),
        seo_title=_first(post, index, "meta_title", "og_title", "twitter_title")[:200],
        seo_description=_first(
            post, index, "meta_description", "og_description", "twitter_description"
        )[:300],
        canonical_url=url_resolve(post.get("canonical_url"), site_url=site_url).strip(),
        featured_image=SourceImage(
            url=image_url,
            alt=_meta(post, index, "feature_image_alt"),
            caption=html.unescape(strip_tags(_meta(post, index, "feature_image_caption"))).strip(),
        )
        if image_url
        else None,
        images=body_images(body),
        old_paths=old_paths,
        notes=list(conversion.notes),
    )


def unconvertible_post(row: Mapping[str, Any], *, reason: str) -> SourcePost:
    """A row the converter could not read, for the report to name (it is skipped, not guessed)."""
    post_id = source_id(row.get("id")) if isinstance(row, Mapping) else ""
    kind: Literal["article", "page"] = (
        "page" if isinstance(row, Mapping) and row.get("type") == "page" else "article"
    )
    return SourcePost(
        source_id=post_id,
        kind=kind,
        title="",
        slug=str(row.get("slug") or "") if isinstance(row, Mapping) else "",
        body="",
        status=Article.Status.DRAFT,
        skipped_because=f"its row could not be converted ({reason[:200]})",
    )
