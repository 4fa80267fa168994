"""Images of an export: found in --media-dir, stored once through the image library.

Each attachment is stored as an `ArticleImage` (so it gets its renditions and
editors find it in the library) the first time a post shows it, and remembered
as an `ImportedItem`, so later posts and later runs reuse the stored file. A file
that is missing, unreadable or outside --media-dir never stops the import: the
post keeps the old address and the report says why.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.utils.html import escape, strip_tags

from outlet.articles.images import MAX_UPLOAD_BYTES, validate_image_upload
from outlet.articles.models import ArticleImage
from outlet.articles.services import article_image_save

from ..fetching import FetchFailed, FetchRefused, media_fetch
from ..models import ImportedItem
from ..records import imported_item_find, imported_item_remember
from ..report import ImportReport
from .markup import Attachment
from .reading import ExportIndex

Kind = ImportedItem.Kind
#: Files fetched from the old site at once (--media-from-site): polite to a server near its end.
FETCH_CONCURRENCY = 4
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp"}
_SIZED_COPY = re.compile(r"-\d+x\d+(?=\.\w+$)")


def _original_url(url: str) -> str:
    """An uploads address without scheme or size suffix: …/photo-800x600.jpg → photo.jpg."""
    path = urlsplit(url).path
    return _SIZED_COPY.sub("", path.partition("/uploads/")[2] or path)


def attachment_relative_path(attachment: Attachment) -> str:
    """Where the file sits under the uploads folder: 2019/05/photo.jpg."""
    return attachment.relative_path or attachment.url.partition("/uploads/")[2]


def attachments_fetch(
    *,
    attachments: Iterable[Attachment],
    folder: Path,
    skip: Callable[[Attachment], bool] = lambda attachment: False,
    max_bytes: int = MAX_UPLOAD_BYTES,
) -> dict[int, str]:
    """Download image attachments from the old site into `folder` (at most
    FETCH_CONCURRENCY at once, each through fetching.media_fetch); the reason per failure."""
    folder = folder.resolve()
    wanted = [
        a
        for a in attachments
        if a.url and Path(urlsplit(a.url).path).suffix.lower() in IMAGE_SUFFIXES and not skip(a)
    ]

    def fetch(attachment: Attachment) -> tuple[int, str]:
        path = (folder / attachment_relative_path(attachment)).resolve()
        if not path.is_relative_to(folder):
            return attachment.post_id, "its path leads outside the uploads folder"
        try:
            body = media_fetch(url=attachment.url, max_bytes=max_bytes)
        except (FetchRefused, FetchFailed) as exc:
            return attachment.post_id, f"could not fetch {attachment.url}: {exc}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        return attachment.post_id, ""

    with ThreadPoolExecutor(max_workers=FETCH_CONCURRENCY) as pool:
        results = list(pool.map(fetch, wanted))
    return {post_id: problem for post_id, problem in results if problem}


class MediaLibrary:
    def __init__(
        self,
        *,
        source: str,
        index: ExportIndex,
        report: ImportReport,
        media_dir: Path | None,
        dry_run: bool,
        media_from_site: bool = False,
        fetched_dir: Path | None = None,
        fetch_failures: dict[int, str] | None = None,
    ) -> None:
        self.source = source
        self.index = index
        self.report = report
        self.media_dir = media_dir.resolve() if media_dir else None
        self.dry_run = dry_run
        self.media_from_site = media_from_site
        self.fetched_dir = fetched_dir.resolve() if fetched_dir else None
        #: Why an attachment could not be fetched from the old site, by attachment id.
        self.fetch_failures = fetch_failures or {}
        self._done: dict[tuple[str, str], str] = {}
        self._by_url: dict[str, int] | None = None

    def _attachment_for(self, src: str, attachment_id: int | None) -> int | None:
        """The attachment an image address shows: by its id, else by its file (WordPress
        bodies often show a resized copy, photo-800x600.jpg, of photo.jpg)."""
        if attachment_id in self.index.attachments:
            return attachment_id
        if self._by_url is None:
            self._by_url = {
                _original_url(a.url): a.post_id for a in self.index.attachments.values()
            }
        return self._by_url.get(_original_url(src))

    def body_images(self, body: str, images: dict[str, int | None], *, label: str) -> str:
        """The body with each image it shows from the old uploads pointing at its stored copy;
        an image not found keeps its old address (and the report says why)."""
        for src, attachment_id in images.items():
            found = self._attachment_for(src, attachment_id)
            if found is None:
                self.report.note(label, f"an image not in the export keeps its old address: {src}")
                continue
            stored = self.image(found, label=label)
            if stored:
                body = body.replace(f'src="{escape(src)}"', f'src="{default_storage.url(stored)}"')
        return body

    def _file_for(self, attachment: Attachment, relative: str) -> tuple[Path | None, str, str]:
        """The local file of an attachment, or the report's outcome and reason for none."""
        reason = "no --media-dir given"
        for folder in (self.media_dir, self.fetched_dir):
            if folder is None:
                continue
            path = (folder / relative).resolve()
            if not path.is_relative_to(folder):
                return None, "failed", "its path leads outside --media-dir"
            if path.is_file():
                return path, "", ""
            reason = "missing from --media-dir"
        if attachment.post_id in self.fetch_failures:
            return None, "failed", self.fetch_failures[attachment.post_id]
        if self.media_from_site and self.dry_run:
            return None, "skipped", "not fetched in a dry run"
        return None, "skipped", reason

    def image(self, attachment_id: int, *, label: str) -> str:
        """The stored name of an attachment's file from --media-dir ('' if not available)."""
        key = (Kind.IMAGE, str(attachment_id))
        if key in self._done:
            return self._done[key]
        self._done[key] = ""
        mapping = imported_item_find(
            source=self.source, kind=Kind.IMAGE, source_id=str(attachment_id)
        )
        if mapping is not None and mapping.location and default_storage.exists(mapping.location):
            self._done[key] = mapping.location
            self.report.record("images", "unchanged", label=f"image {attachment_id}")
            return mapping.location
        attachment = self.index.attachments.get(attachment_id)
        if attachment is None:
            self.report.record(
                "images",
                "skipped",
                label=f"image {attachment_id} ({label})",
                reason="not in the export",
            )
            return ""
        relative = attachment_relative_path(attachment)
        path, outcome, reason = self._file_for(attachment, relative)
        if path is None:
            self.report.record(
                "images", outcome, label=f"image {attachment_id} {relative}", reason=reason
            )
            return ""
        with path.open("rb") as handle:
            upload = File(handle, name=path.name)
            try:
                validate_image_upload(upload)
            except ValidationError as exc:
                self.report.record(
                    "images",
                    "failed",
                    label=f"image {attachment_id} {relative}",
                    reason=" ".join(exc.messages),
                )
                return ""
            if self.dry_run:
                self.report.record("images", "imported", label=f"image {attachment_id}")
                return ""
            handle.seek(0)
            # Through the image library, so it gets renditions and editors can reuse it.
            image = ArticleImage(
                alt_text=attachment.alt[:300], caption=strip_tags(attachment.caption)[:300]
            )
            # Not stored here under its old name: the library names it by its content.
            image.image = upload
            article_image_save(image=image)
            stored = str(image.image.name)
        imported_item_remember(
            source=self.source,
            kind=Kind.IMAGE,
            source_id=str(attachment_id),
            object_id=image.pk,
            location=stored,
        )
        self.report.record("images", "imported", label=f"image {attachment_id}")
        self._done[key] = stored
        return stored
