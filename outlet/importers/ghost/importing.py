"""The Ghost source for the shared run (`importers/running.py`): its index pass.

`ghost_read` reads the whole export once (a truncated file or one that is not a
Ghost export is refused before anything is written) and hands the run the
posts to convert one by one on the second pass, where the images live under
`--media-dir` (Ghost's `content/images` folder), and the old site's feed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from django.utils import timezone

from ..running import SourceRun
from ..source import SourceImage, SourcePost
from .converting import SITE_FEEDS, post_convert, site_prefix, unconvertible_post
from .reading import ExportIndex, export_index, export_posts

#: Ghost's resized and reformatted copies: /content/images/size/w600/format/webp/2024/03/a.jpg.
_RESIZED = re.compile(r"^(?:size/[wh\d]+/)?(?:format/\w+/)?")


def images_relative_path(url: str) -> str:
    """Where an image sits under Ghost's content/images folder (--media-dir), as the
    original upload: …/content/images/size/w600/2024/03/a.jpg → 2024/03/a.jpg."""
    _, found, relative = urlsplit(url).path.partition("/content/images/")
    return _RESIZED.sub("", relative) if found else ""


def _source_name(index: ExportIndex) -> str:
    """How the import remembers this Ghost site: its host, else its install's own id."""
    host = urlsplit(index.site_url).netloc
    return f"ghost:{host or (index.db_hash[:16] if index.db_hash else 'unknown-site')}"


def ghost_read(path: Path) -> SourceRun:
    """The index pass over a Ghost JSON export (raises ExportUnreadable for one that is not)."""
    index = export_index(path)
    now = timezone.now()

    def posts() -> Iterator[SourcePost]:
        for row in export_posts(path, index):
            try:
                yield post_convert(row, index=index, now=now)
            except (ValueError, TypeError) as exc:  # one odd row is reported, not fatal
                yield unconvertible_post(row, reason=str(exc))
            except RecursionError:  # a lexical or mobiledoc document (JSON in a string)
                yield unconvertible_post(row, reason="its document is nested too deep")

    def images() -> Iterator[SourceImage]:
        for post in posts():
            if post.featured_image is not None:
                yield post.featured_image
            yield from post.images.values()

    prefix = site_prefix(index.site_url)
    return SourceRun(
        source=_source_name(index),
        posts=posts,
        total=index.posts,
        images=images,
        relative_path=images_relative_path,
        slug_suffix="ghost",
        site_redirects={f"{prefix}{old}": new for old, new in SITE_FEEDS.items()},
    )
