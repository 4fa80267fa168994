"""A WordPress export's items as `SourcePost`s: every WordPress rule, in pure functions.

`item_convert` is a function of its arguments (the item, the index the first pass
read, the time and the site's zone): the status (`status_choose`), the publish
time, the slug, the SEO fields and canonical address, sticky → featured,
Co-Authors Plus guest authors, the category path of the old category archive,
and every old address of the item (its permalink, /?p= or /?page_id=, the pages
of the images uploaded to it). `wordpress_read` is the source's index pass for
the shared run (`running.py`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone

from outlet.redirects.services import old_path_from_url

from ..running import SourceRun
from ..source import SourceImage, SourcePerson, SourcePost, SourceTerm
from .converting import (
    CANONICAL_KEYS,
    SKIPPED_STATUSES,
    body_convert,
    date_parse,
    first_meta,
    seo_fields,
    slug_derive,
    status_choose,
)
from .markup import Attachment
from .media import attachment_relative_path, original_url, uploads_relative_path
from .reading import CONTENT_TYPES, ExportIndex, Item, Person, Term, export_index, export_items

#: The old site's own feed addresses and where they go here.
SITE_FEEDS = {
    "/?feed=rss2": "/feed/",
    "/?feed=rss": "/feed/",
    "/?feed=atom": "/feed/atom/",
    "/feed/rss2/": "/feed/",
    "/feed/rss/": "/feed/",
    "/comments/feed/": "/feed/",
}


@dataclass
class Converter:
    """What converting an item needs of the whole export, worked out once."""

    index: ExportIndex
    now: dt.datetime
    site_timezone: str
    prefix: str = ""
    by_parent: dict[int, list[Attachment]] = field(default_factory=dict)
    by_file: dict[str, int] = field(default_factory=dict)

    @classmethod
    def for_index(cls, index: ExportIndex, *, now: dt.datetime, site_timezone: str) -> Converter:
        converter = cls(
            index=index,
            now=now,
            site_timezone=site_timezone,
            prefix=(urlsplit(index.blog_url or index.site_url).path or "").rstrip("/"),
        )
        for attachment in index.attachments.values():
            if attachment.parent_id and attachment.link:
                converter.by_parent.setdefault(attachment.parent_id, []).append(attachment)
            converter.by_file[original_url(attachment.url)] = attachment.post_id
        return converter

    # --- people and terms --------------------------------------------------------------

    def person(self, login: str) -> SourcePerson:
        person = self.index.people.get(login) or Person(login=login, display_name=login)
        at = f"{self.prefix}/author/{login}/"
        by_id = (f"{self.prefix}/?author={person.author_id}",) if person.author_id else ()
        return SourcePerson(
            source_id=login,
            name=person.display_name,
            slug=login,
            email=person.email,
            old_paths=(at, *by_id),
            old_feed_paths=(f"{at}feed/",),
        )

    def _category_path(self, slug: str) -> str:
        parts: list[str] = []
        seen: set[str] = set()
        while slug and slug not in seen:
            seen.add(slug)
            parts.insert(0, slug)
            term = self.index.terms.get(("category", slug))
            slug = term.parent if term else ""
        return "/".join(parts)

    def category(self, slug: str) -> SourceTerm:
        term = self.index.terms.get(("category", slug)) or Term("category", slug, slug)
        old = f"{self.prefix}/category/{self._category_path(slug)}/"
        by_id = (f"{self.prefix}/?cat={term.term_id}",) if term.term_id else ()
        return SourceTerm(
            source_id=slug,
            name=term.name,
            slug=slug,
            old_paths=(old, *by_id),
            old_feed_paths=(f"{old}feed/",),
        )

    def tag(self, slug: str, name: str) -> SourceTerm:
        term = self.index.terms.get(("post_tag", slug)) or Term("post_tag", slug, name or slug)
        at = f"{self.prefix}/tag/{slug}/"
        return SourceTerm(
            source_id=slug,
            name=term.name,
            slug=slug,
            old_paths=(at,),
            old_feed_paths=(f"{at}feed/",),
        )

    # --- images --------------------------------------------------------------------------

    def image(self, attachment_id: int) -> SourceImage:
        """An attachment as an image ("" address: not in the export, the writer says so)."""
        attachment = self.index.attachments.get(attachment_id)
        if attachment is None:
            return SourceImage(url="", source_id=str(attachment_id))
        return SourceImage(
            url=attachment.url,
            alt=attachment.alt,
            caption=attachment.caption,
            source_id=str(attachment_id),
        )

    def _attachment_for(self, src: str, attachment_id: int | None) -> int | None:
        """The attachment an image address shows: by its id, else by its file (WordPress
        bodies often show a resized copy, photo-800x600.jpg, of photo.jpg)."""
        if attachment_id in self.index.attachments:
            return attachment_id
        return self.by_file.get(original_url(src))

    def relative_path(self, url: str) -> str:
        """Where an attachment's file sits under the uploads folder: 2019/05/photo.jpg."""
        found = self.by_file.get(original_url(url))
        if found is not None:
            return attachment_relative_path(self.index.attachments[found])
        return uploads_relative_path(url)

    # --- items ---------------------------------------------------------------------------

    def item_convert(self, item: Item) -> SourcePost:
        kind: Literal["article", "page"] = "article" if item.post_type == "post" else "page"
        name = item.slug or item.title[:40] or "untitled"
        label = f"{item.post_type or 'item'} {item.post_id} ({name})"
        slug = slug_derive(slug=item.slug, title=item.title, post_id=item.post_id)
        base = SourcePost(
            source_id=str(item.post_id),
            kind=kind,
            title=item.title,
            slug=slug,
            body="",
            status="draft",
            label=label,
        )
        if item.status in SKIPPED_STATUSES:
            base.skipped_because = SKIPPED_STATUSES[item.status]
            return base
        publish_at = date_parse(
            gmt=item.date_gmt, local=item.date, site_timezone=self.site_timezone
        )
        body, conversion = body_convert(item.content, attachments=self.index.attachments)
        images: dict[str, SourceImage] = {}
        notes: list[str] = []
        for src, attachment_id in conversion.images.items():
            found = self._attachment_for(src, attachment_id)
            if found is None:
                notes.append(f"an image not in the export keeps its old address: {src}")
            else:
                images[src] = self.image(found)
        choice = status_choose(
            wp_status=item.status, password=item.password, publish_at=publish_at, now=self.now
        )
        base.body = body
        base.images = images
        base.status = choice.status
        base.held_because = choice.held_because
        base.publish_at = publish_at
        base.excerpt = item.excerpt
        base.notes = notes + conversion.notes
        base.canonical_url = first_meta(item.meta, CANONICAL_KEYS)
        seo = seo_fields(item.meta)
        base.seo_title, base.seo_description = seo["seo_title"], seo["seo_description"]
        link = old_path_from_url(item.link)
        if kind == "page":
            base.old_paths = [link, f"{self.prefix}/?page_id={item.post_id}"]
            return base
        base.old_paths = [link, f"{self.prefix}/?p={item.post_id}"]
        # The pages of images uploaded to this post lead to the post.
        for attachment in self.by_parent.get(item.post_id, []):
            base.old_paths.append(old_path_from_url(attachment.link))
            base.old_paths.append(f"{self.prefix}/?attachment_id={attachment.post_id}")
        categories = [t.slug for t in item.terms if t.taxonomy == "category" and t.slug]
        base.section = self.category(categories[0]) if categories else None
        base.tags = [
            self.tag(t.slug, t.name) for t in item.terms if t.taxonomy == "post_tag" and t.slug
        ]
        logins = [
            t.name or t.slug.removeprefix("cap-") for t in item.terms if t.taxonomy == "author"
        ]
        logins = list(dict.fromkeys(logins or ([item.creator] if item.creator else [])))
        base.authors = [self.person(login) for login in logins]
        thumbnail = item.meta.get("_thumbnail_id") or ""
        if thumbnail.isdigit() and int(thumbnail):
            base.featured_image = self.image(int(thumbnail))
        base.featured = item.sticky
        return base

    def posts(self, path: Path, counter: list[int]) -> Iterator[SourcePost]:
        """The export's posts and pages in file order (`counter[0]`: entries read so far)."""
        for item in export_items(path):
            counter[0] += 1
            if item.post_type in CONTENT_TYPES:
                yield self.item_convert(item)


def wordpress_read(path: Path) -> SourceRun:
    """The index pass over a WXR file (raises ExportUnreadable for a file that is not one)."""
    index = export_index(path)
    host = urlsplit(index.site_url or index.blog_url).netloc or "unknown-site"
    converter = Converter.for_index(index, now=timezone.now(), site_timezone=settings.TIME_ZONE)
    counter = [0]
    return SourceRun(
        source=f"wordpress:{host}",
        posts=lambda: converter.posts(path, counter),
        total=index.items,
        images=lambda: [converter.image(post_id) for post_id in index.attachments],
        relative_path=converter.relative_path,
        slug_suffix="wp",
        site_redirects={f"{converter.prefix}{old}": new for old, new in SITE_FEEDS.items()},
        date_archive_prefix=converter.prefix,
        items_read=lambda: counter[0],
    )
