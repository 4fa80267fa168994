"""Streaming CSV downloads for the admin, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
from collections.abc import Iterable

from django.http import StreamingHttpResponse

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    """A file-like object whose write returns the line, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value


def csv_cell_safe(cell: object) -> object:
    """Spreadsheets run text cells that start with these as formulas: quote them.

    Readers type names and sources into public forms, so exported text is untrusted.
    """
    if isinstance(cell, str) and cell[:1] in _FORMULA_STARTS:
        return "'" + cell
    return cell


def csv_stream_response(
    rows: Iterable[Iterable[object]], *, filename: str
) -> StreamingHttpResponse:
    """Stream `rows` (the header first) as a CSV attachment, row by row, never all in memory."""
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow([csv_cell_safe(cell) for cell in row]) for row in rows),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
