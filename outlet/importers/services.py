"""`archive_import`: one door for every source, called by the command (and later the admin)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from .report import ImportReport

SOURCES = ("wordpress",)


def archive_import(
    *,
    source: str,
    path: Path,
    media_dir: Path | None = None,
    media_from_site: bool = False,
    dry_run: bool = False,
    since: dt.datetime | None = None,
) -> ImportReport:
    """Import an export of `source` at `path`; never raises for bad input, the report says."""
    if source == "wordpress":
        from .wordpress.importing import wordpress_import

        return wordpress_import(
            path=path,
            media_dir=media_dir,
            media_from_site=media_from_site,
            dry_run=dry_run,
            since=since,
        )
    report = ImportReport(source=source, dry_run=dry_run)
    report.fatal = (
        f"“{source}” is not a source this site imports yet (known: {', '.join(SOURCES)})."
    )
    return report
