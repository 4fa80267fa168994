"""The WordPress import as one call: index the file, then write its items in one transaction."""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..report import ImportReport
from .media import MediaLibrary, attachment_relative_path, attachments_fetch
from .reading import ExportIndex, ExportUnreadable, export_index, export_items
from .writing import ExportWriter


class _DryRunRollback(Exception):
    pass


def wordpress_import(
    *,
    path: Path,
    media_dir: Path | None = None,
    media_from_site: bool = False,
    dry_run: bool = False,
    since: dt.datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Import a WXR file; the report says what happened to each item.

    The whole file is read once before anything is written, so a truncated or
    malformed file changes nothing. The writes then run in one transaction, each
    item in a savepoint of its own (one bad post fails alone); a dry run rolls the
    transaction back at the end, so its report is exactly what a real run would do.
    """
    report = ImportReport(source="wordpress", dry_run=dry_run)
    try:
        index = export_index(path)
    except ExportUnreadable as exc:
        report.fatal = str(exc)
        return report
    host = urlsplit(index.site_url or index.blog_url).netloc or "unknown-site"
    with tempfile.TemporaryDirectory(prefix="archive-import-media-") as fetched:
        fetch_failures = {}
        if media_from_site and not dry_run:
            local = media_dir.resolve() if media_dir else None
            fetch_failures = attachments_fetch(
                attachments=index.attachments.values(),
                folder=Path(fetched),
                skip=lambda a: bool(local and (local / attachment_relative_path(a)).is_file()),
            )
        _write(
            report=report,
            path=path,
            index=index,
            host=host,
            media=MediaLibrary(
                source=f"wordpress:{host}",
                index=index,
                report=report,
                media_dir=media_dir,
                dry_run=dry_run,
                media_from_site=media_from_site,
                fetched_dir=Path(fetched) if media_from_site and not dry_run else None,
                fetch_failures=fetch_failures,
            ),
            dry_run=dry_run,
            since=since,
            progress=progress,
        )
    return report


def _write(
    *,
    report: ImportReport,
    path: Path,
    index: ExportIndex,
    host: str,
    media: MediaLibrary,
    dry_run: bool,
    since: dt.datetime | None,
    progress: Callable[[int, int], None] | None,
) -> None:
    writer = ExportWriter(
        source=f"wordpress:{host}",
        index=index,
        report=report,
        media=media,
        now=timezone.now(),
        site_timezone=settings.TIME_ZONE,
        since=since,
        progress=progress,
    )
    try:
        with transaction.atomic():
            writer.items_write(export_items(path))
            if dry_run:
                raise _DryRunRollback
    except _DryRunRollback:
        pass
    except ExportUnreadable as exc:  # the file changed between the two passes
        report.fatal = str(exc)
