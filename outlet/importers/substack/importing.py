"""Substack as a source of the shared run (running.py): its index pass and its posts.

The export names no author: every post is by one person, the `author` given (the
command's --author), else the publication's name where the export shows it,
else "Staff"; the report says which. Images have no uploads folder on Substack:
with --media-dir, a file is looked up by its name (what Substack's own image
address ends with, as a download of them keeps it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from lxml import etree

from ..running import SourceRun
from ..source import SourceImage, SourcePerson, SourcePost
from .converting import author_for, numeric_id, post_convert, skip_reason, slug_derive
from .reading import ExportIndex, ExportPost, export_index, export_posts

SOURCE = "substack"


def relative_path(url: str) -> str:
    """Where an image sits under --media-dir: its file name."""
    name = PurePosixPath(unquote(urlsplit(url).path)).name
    return "" if name in ("", ".", "..") else name


def _unread(exported: ExportPost) -> SourcePost:
    """A row that does not come across, as the writer reports it (by kind, id and slug)."""
    row = exported.row
    return SourcePost(
        source_id=numeric_id(row.post_id),
        kind="page" if row.type.strip().lower() == "page" else "article",
        title=row.title,
        slug=slug_derive(post_id=row.post_id, title=row.title),
        body="",
        status="draft",
    )


def post_for(
    exported: ExportPost, *, author: SourcePerson, now: dt.datetime, own_host: str = ""
) -> SourcePost:
    """One exported row as what the writer takes: converted, or skipped or failed with why."""
    reason = skip_reason(exported.row)
    if reason or exported.problem:
        return replace(_unread(exported), skipped_because=reason, failed_because=exported.problem)
    try:
        return post_convert(
            row=exported.row, html_text=exported.html, author=author, now=now, own_host=own_host
        )
    except (ValueError, etree.LxmlError) as exc:  # HTML no parser makes sense of
        return replace(_unread(exported), failed_because=f"its HTML could not be read ({exc})")


def _notes(index: ExportIndex, author: str, given: str) -> list[str]:
    notes = []
    if given:
        notes.append(f"every post is by “{author}” (--author)")
    elif index.publication:
        notes.append(
            f"the export names no author: every post is by “{author}”, the publication's "
            "name (give another with --author, or Author in the admin)"
        )
    else:
        notes.append(f"the export names no author: every post is by “{author}” (--author)")
    if index.encoding == "cp1252":
        notes.append(
            "posts.csv was not UTF-8 and was read as Windows-1252 (as Excel saves it): "
            "check titles with accents or quotes"
        )
    return notes


def substack_read(path: Path, *, author: str = "") -> SourceRun:
    """The index pass over a Substack export folder or zip (ExportUnreadable if not one)."""
    index = export_index(path)
    name = author.strip() or index.publication or gettext("Staff")
    person = author_for(name)
    now = timezone.now()
    counter = [0]

    def posts() -> Iterator[SourcePost]:
        counter[0] = 0
        for exported in export_posts(path, index):
            counter[0] += 1
            yield post_for(exported, author=person, now=now, own_host=index.host)

    def images() -> Iterator[SourceImage]:
        for exported in export_posts(path, index):
            if exported.html and not skip_reason(exported.row):
                yield from post_for(
                    exported, author=person, now=now, own_host=index.host
                ).images.values()

    return SourceRun(
        source=SOURCE,
        posts=posts,
        total=index.rows,
        images=images,
        relative_path=relative_path,
        slug_suffix="substack",
        site_redirects={"/archive": reverse("articles:archive"), "/feed": "/feed/"},
        items_read=lambda: counter[0],
        notes=_notes(index, name, author.strip()),
    )
