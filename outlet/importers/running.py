"""The shared run of every source: read the whole input, then write it in one transaction.

A source plugs in with one function, `read(path) -> SourceRun` (its index pass),
registered in `services.SOURCES`. The index pass reads the whole input before
anything is written, so a truncated or malformed file changes nothing (it raises
`SourceUnreadable`, and the report's `fatal` says why). The writes then run in
one transaction, each item in a savepoint of its own (one bad item fails alone);
a dry run rolls the transaction back at the end, so its report is exactly what a
real run would do.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from .media import MediaLibrary, RelativePath, images_fetch
from .report import ImportReport
from .source import SourceImage, SourcePost
from .writing import PostWriter


class SourceUnreadable(Exception):
    """The input is not a (complete) export of its source; the message says why, for a person."""


@dataclass
class SourceRun:
    """What a source's index pass found, and how to read its posts."""

    #: The site the export came from, as `ImportedItem.source` keeps it ("ghost:blog.example").
    source: str
    #: The second pass: the posts, in order (may raise SourceUnreadable if the file changed).
    posts: Callable[[], Iterable[SourcePost]]
    #: How many items the input holds (for progress).
    total: int = 0
    #: Every image the posts may show, for --media-from-site to fetch beforehand.
    images: Callable[[], Iterable[SourceImage]] = lambda: ()
    relative_path: RelativePath = lambda url: ""
    #: Added to a person's, section's or tag's slug when it is taken here.
    slug_suffix: str = "imported"
    #: The old site's own addresses (its feeds) and where they go here.
    site_redirects: dict[str, str] = field(default_factory=dict)
    #: Where the old site's date archives (/2019/05/) live, if it had them.
    date_archive_prefix: str | None = None
    #: How many entries of the input `posts` has read so far, where it holds more than
    #: posts (progress then counts entries, of `total`); None: progress counts posts.
    items_read: Callable[[], int] | None = None
    #: What the report should say of the whole run (an assumption the source made…).
    notes: list[str] = field(default_factory=list)


#: A source's index pass.
SourceRead = Callable[[Path], SourceRun]
Progress = Callable[[int, int], None]


class _DryRunRollback(Exception):
    pass


def source_import(
    *,
    name: str,
    read: SourceRead,
    path: Path,
    media_dir: Path | None = None,
    media_from_site: bool = False,
    dry_run: bool = False,
    since: dt.datetime | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import `path` with source `name`'s reader; never raises for bad input: the report says."""
    report = ImportReport(source=name, dry_run=dry_run)
    try:
        run = read(path)
    except SourceUnreadable as exc:
        report.fatal = str(exc)
        return report
    for note in run.notes:
        report.note(name, note)
    with tempfile.TemporaryDirectory(prefix="archive-import-media-") as fetched:
        fetch = media_from_site and not dry_run
        fetch_failures: dict[str, str] = {}
        if fetch:
            local = media_dir.resolve() if media_dir else None

            def found_locally(image: SourceImage) -> bool:
                relative = run.relative_path(image.url)
                return bool(local and relative and (local / relative).is_file())

            fetch_failures = images_fetch(
                images=run.images(), folder=Path(fetched), skip=found_locally
            )
        media = MediaLibrary(
            source=run.source,
            report=report,
            media_dir=media_dir,
            dry_run=dry_run,
            relative_path=run.relative_path,
            media_from_site=media_from_site,
            fetched_dir=Path(fetched) if fetch else None,
            fetch_failures=fetch_failures,
        )
        writer = PostWriter(
            source=run.source,
            report=report,
            media=media,
            slug_suffix=run.slug_suffix,
            since=since,
            total=run.total,
            progress=progress,
            site_redirects=run.site_redirects,
            date_archive_prefix=run.date_archive_prefix,
            items_read=run.items_read,
        )
        try:
            with transaction.atomic():
                writer.posts_write(run.posts())
                if dry_run:
                    raise _DryRunRollback
        except _DryRunRollback:
            pass
        except SourceUnreadable as exc:  # the file changed between the two passes
            report.fatal = str(exc)
    return report
