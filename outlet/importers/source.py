"""What every source's converter hands to the writer: one platform-neutral shape.

Each source (WordPress, Ghost, Substack) keeps its own reading and converting
(`<source>/reading.py`, `<source>/converting.py`: pure functions a fixture test
can call) and ends in these records; one writer turns them into the site's
articles, pages, people, sections, tags, images and redirects, idempotently
under `(source, kind, source_id)`. Paths in `old_paths` are what a reader's old
link arrives at (`old_path_from_url`), each answered with a 301 to the new home
of the object once it is public.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class SourcePerson:
    """An author (a WordPress login or Co-Authors Plus guest, a Ghost staff user…)."""

    source_id: str
    name: str
    slug: str
    email: str = ""
    bio: str = ""
    #: The person's old archive addresses (/author/jane/, /?author=3).
    old_paths: tuple[str, ...] = ()
    #: The person's old feed addresses (/author/jane/feed/), sent to their feed here.
    old_feed_paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class SourceTerm:
    """A category (→ section) or tag."""

    source_id: str
    name: str
    slug: str
    description: str = ""
    old_paths: tuple[str, ...] = ()
    #: Old feed addresses (/category/news/feed/), sent to the section's feed here
    #: (tags have no feed here: to the tag's page).
    old_feed_paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class SourceImage:
    """An image a post shows: the address the export uses, and what describes it."""

    url: str
    alt: str = ""
    caption: str = ""
    #: The source's own id for the file where it has one (a WordPress attachment id);
    #: otherwise the writer keys the stored file by `url`.
    source_id: str = ""


@dataclass
class SourcePost:
    """An article or a page, its body already in the site's markup (sanitised)."""

    source_id: str
    kind: Literal["article", "page"]
    title: str
    slug: str
    body: str
    #: "published", "scheduled" or "draft" (Article.Status values); private,
    #: password-protected and unknown states are "draft" with `held_because` said.
    status: str
    publish_at: dt.datetime | None = None
    excerpt: str = ""
    held_because: str = ""
    authors: list[SourcePerson] = field(default_factory=list)
    section: SourceTerm | None = None
    tags: list[SourceTerm] = field(default_factory=list)
    featured: bool = False
    seo_title: str = ""
    seo_description: str = ""
    canonical_url: str = ""
    featured_image: SourceImage | None = None
    #: Inline images of the body by the address the body uses (the writer stores
    #: each and rewrites the body's addresses to the stored file).
    images: dict[str, SourceImage] = field(default_factory=dict)
    #: Old public addresses of this item (permalink, /?p=123, /p/slug…).
    old_paths: list[str] = field(default_factory=list)
    #: What the conversion changed on the way (a block kept as HTML…), for the report.
    notes: list[str] = field(default_factory=list)
    #: Why the item is not imported at all (in the trash…); the report counts it skipped.
    skipped_because: str = ""
    #: Why the item could not be read (its file missing from the export…); the report
    #: counts it failed, and the rest of the import goes on.
    failed_because: str = ""
    #: How the report names the item ("post 12 (hello)"); default "<kind> <source_id> (<slug>)".
    label: str = ""
