"""Images of any source: found in --media-dir or fetched from the old site, stored once.

Each `SourceImage` is stored as an `ArticleImage` (so it gets its renditions and
editors find it in the library) the first time a post shows it, and remembered
as an `ImportedItem` keyed by the image's `source_id` (else its `url`), so later
posts and later runs reuse the stored file. Where the file is found is the
source's business: `relative_path(url)` names it under --media-dir (WordPress:
after /uploads/; Ghost: after /content/images/; "" where a source has no such
folder). With --media-from-site, files are fetched beforehand (`images_fetch`)
through `fetching.py`, which keeps its safety rules. A file that is missing,
unreadable or outside --media-dir never stops the import: the post keeps the
old address and the report says why.
"""

from __future__ import annotations

import hashlib
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

from .fetching import FetchFailed, FetchRefused, media_fetch
from .models import ImportedItem
from .records import imported_item_find, imported_item_remember
from .report import ImportReport
from .source import SourceImage

Kind = ImportedItem.Kind
#: Files fetched from the old site at once (--media-from-site): polite to a server near its end.
FETCH_CONCURRENCY = 4
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp"}
#: Where a source's image address sits under --media-dir ("" when it has no such folder).
RelativePath = Callable[[str], str]


def image_key(image: SourceImage) -> str:
    """What an image is remembered by: the source's id for it, else its address."""
    return image.source_id or image.url


def fetched_name(image: SourceImage) -> str:
    """The file name a fetched image gets in the run's own folder: derived from its key,
    so no address can name a path outside that folder."""
    suffix = Path(urlsplit(image.url).path).suffix.lower()
    return hashlib.sha256(image_key(image).encode()).hexdigest()[:32] + suffix


def images_fetch(
    *,
    images: Iterable[SourceImage],
    folder: Path,
    skip: Callable[[SourceImage], bool] = lambda image: False,
    max_bytes: int = MAX_UPLOAD_BYTES,
) -> dict[str, str]:
    """Download images from the old site into `folder` (at most FETCH_CONCURRENCY at
    once, each through fetching.media_fetch); the reason per failure, by `image_key`."""
    folder = folder.resolve()
    wanted = {
        image_key(i): i
        for i in images
        if i.url and Path(urlsplit(i.url).path).suffix.lower() in IMAGE_SUFFIXES and not skip(i)
    }

    def fetch(image: SourceImage) -> tuple[str, str]:
        try:
            body = media_fetch(url=image.url, max_bytes=max_bytes)
        except (FetchRefused, FetchFailed) as exc:
            return image_key(image), f"could not fetch {image.url}: {exc}"
        (folder / fetched_name(image)).write_bytes(body)
        return image_key(image), ""

    with ThreadPoolExecutor(max_workers=FETCH_CONCURRENCY) as pool:
        results = list(pool.map(fetch, wanted.values()))
    return {key: problem for key, problem in results if problem}


class MediaLibrary:
    def __init__(
        self,
        *,
        source: str,
        report: ImportReport,
        media_dir: Path | None,
        dry_run: bool,
        relative_path: RelativePath = lambda url: "",
        media_from_site: bool = False,
        fetched_dir: Path | None = None,
        fetch_failures: dict[str, str] | None = None,
    ) -> None:
        self.source = source
        self.report = report
        self.media_dir = media_dir.resolve() if media_dir else None
        self.dry_run = dry_run
        self.relative_path = relative_path
        self.media_from_site = media_from_site
        self.fetched_dir = fetched_dir.resolve() if fetched_dir else None
        #: Why an image could not be fetched from the old site, by `image_key`.
        self.fetch_failures = fetch_failures or {}
        self._done: dict[str, str] = {}

    @property
    def active(self) -> bool:
        """Whether images are stored at all this run (part of a post's fingerprint)."""
        return bool(self.media_dir or self.media_from_site)

    def body_images(self, body: str, images: dict[str, SourceImage], *, label: str) -> str:
        """The body with each image it shows pointing at its stored copy; an image not
        found keeps its old address (and the report says why)."""
        for src, image in images.items():
            stored = self.image(image, label=label)
            if stored:
                body = body.replace(f'src="{escape(src)}"', f'src="{default_storage.url(stored)}"')
        return body

    def _file_for(self, image: SourceImage, relative: str) -> tuple[Path | None, str, str]:
        """The local file of an image, or the report's outcome and reason for none."""
        # Read in the admin too, which has no --media-dir: say what would have brought it.
        reason = "no media folder given (--media-dir)"
        if not self.media_from_site:
            reason += " and fetching from the old site is off"
        if self.media_dir is not None:
            reason = "missing from --media-dir"
            if relative:
                path = (self.media_dir / relative).resolve()
                if not path.is_relative_to(self.media_dir):
                    return None, "failed", "its path leads outside --media-dir"
                if path.is_file():
                    return path, "", ""
        if self.fetched_dir is not None:
            path = self.fetched_dir / fetched_name(image)
            if path.is_file():
                return path, "", ""
            reason = "missing from --media-dir"
        if image_key(image) in self.fetch_failures:
            return None, "failed", self.fetch_failures[image_key(image)]
        if self.media_from_site and self.dry_run:
            return None, "skipped", "not fetched in a dry run"
        return None, "skipped", reason

    def image(self, image: SourceImage, *, label: str) -> str:
        """The stored name of an image's file ('' if not available)."""
        key = image_key(image)
        if key in self._done:
            return self._done[key]
        self._done[key] = ""
        name = f"image {key}"
        mapping = imported_item_find(source=self.source, kind=Kind.IMAGE, source_id=key)
        if mapping is not None and mapping.location and default_storage.exists(mapping.location):
            self._done[key] = mapping.location
            self.report.record("images", "unchanged", label=name)
            return mapping.location
        if not image.url:
            self.report.record(
                "images", "skipped", label=f"{name} ({label})", reason="not in the export"
            )
            return ""
        relative = self.relative_path(image.url)
        path, outcome, reason = self._file_for(image, relative)
        described = f"{name} {relative or image.url}"
        if path is None:
            self.report.record("images", outcome, label=described, reason=reason)
            return ""
        with path.open("rb") as handle:
            upload = File(handle, name=path.name)
            try:
                validate_image_upload(upload)
            except ValidationError as exc:
                self.report.record(
                    "images", "failed", label=described, reason=" ".join(exc.messages)
                )
                return ""
            if self.dry_run:
                self.report.record("images", "imported", label=name)
                return ""
            handle.seek(0)
            # Through the image library, so it gets renditions and editors can reuse it.
            stored_image = ArticleImage(
                alt_text=image.alt[:300], caption=strip_tags(image.caption)[:300]
            )
            # Not stored here under its old name: the library names it by its content.
            stored_image.image = upload
            article_image_save(image=stored_image)
            stored = str(stored_image.image.name)
        imported_item_remember(
            source=self.source,
            kind=Kind.IMAGE,
            source_id=key,
            object_id=stored_image.pk,
            location=stored,
        )
        self.report.record("images", "imported", label=name)
        self._done[key] = stored
        return stored
