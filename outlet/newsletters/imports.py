"""Subscriber CSV import: read a file, then create the subscribers and their confirmed
subscriptions in chunks a run can resume from, with a per-row report of refusals.

An import is a `SubscriberImport` row; `subscriber_import_run` (from the admin or its
task) commits one chunk at a time and records how far it got, so a crashed run resumes
where it stopped and beat's tick fails one that stopped committing.
"""

from __future__ import annotations

import csv
import io
import logging
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from outlet.core.addresses import email_digest, email_normalise
from outlet.core.bulk import rows_write
from outlet.newsletters.models import (
    ConsentRecord,
    Newsletter,
    Subscriber,
    SubscriberImport,
    SubscriberImportRefusal,
    Subscription,
    Suppression,
)
from outlet.newsletters.services import MAX_NAME_LENGTH, email_validate

logger = logging.getLogger(__name__)


IMPORT_CHUNK_ROWS = 1000
#: A running import that committed no chunk for this long is shown as failed.
IMPORT_STALL_SECONDS = 15 * 60


class ImportFileError(ValueError):
    """The file as a whole cannot be read: wrong encoding, no header, wrong columns."""


@dataclass(frozen=True, slots=True)
class ImportRow:
    line: int
    email: str
    name: str


def import_file_read(data: bytes) -> list[ImportRow]:
    """Parse an uploaded CSV; raise ImportFileError with a message fit for an editor.

    The file must be UTF-8 (a BOM is fine) with a header row naming an
    `email` column; `name` is optional, other columns are ignored.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            f"The file is not UTF-8 text (bad byte at position {exc.start}). "
            "Export it again as “CSV UTF-8”."
        ) from exc
    if "\x00" in text:
        raise ImportFileError("The file looks binary, not CSV.")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [column.strip().lower() for column in next(reader)]
    except StopIteration:
        raise ImportFileError("The file is empty.") from None
    except csv.Error as exc:
        raise ImportFileError(f"The header row cannot be read: {exc}") from exc
    if "email" not in header:
        raise ImportFileError(
            "The first row must name the columns and include “email” (and optionally “name”); "
            f"found: {', '.join(header) or 'nothing'}."
        )
    email_at = header.index("email")
    name_at = header.index("name") if "name" in header else None
    rows = []
    try:
        for values in reader:
            if not any(value.strip() for value in values):
                continue
            rows.append(
                ImportRow(
                    line=reader.line_num,
                    email=values[email_at] if email_at < len(values) else "",
                    name=values[name_at] if name_at is not None and name_at < len(values) else "",
                )
            )
    except csv.Error as exc:
        raise ImportFileError(f"Line {reader.line_num} cannot be read: {exc}") from exc
    return rows


def subscriber_import_create(
    *,
    data: bytes,
    filename: str,
    newsletters: Iterable[Newsletter],
    consent_confirmed: bool,
    consent_text: str,
    created_by=None,
) -> SubscriberImport:
    """Check an upload and record it as an import to run (see subscriber_import_run)."""
    if not consent_confirmed:
        raise ValidationError(
            "Confirm that everyone in the file agreed to receive these newsletters."
        )
    chosen = list(newsletters)
    if not chosen:
        raise ValidationError("Choose at least one newsletter.")
    try:
        rows = import_file_read(data)
    except ImportFileError as exc:
        raise ValidationError(str(exc)) from exc
    if not rows:
        raise ValidationError("The file has a header but no rows.")
    job = SubscriberImport.objects.create(
        filename=filename[:200],
        content=data.decode("utf-8-sig"),
        total_rows=len(rows),
        consent_text=consent_text,
        created_by=created_by,
    )
    job.newsletters.set(chosen)
    return job


def _chunks(rows: list[ImportRow], size: int) -> Iterator[list[ImportRow]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def subscriber_import_run(*, job: SubscriberImport) -> SubscriberImport:
    """Import the rows of `job` not yet processed, one chunk per transaction.

    Each chunk's subscribers, choices, consent records, report lines and the
    progress counter commit together, so a crashed run resumes where it
    stopped and imports nobody twice. Rows are refused when the address is
    malformed or too long, repeats an earlier row, is suppressed, or already
    belongs to a subscriber (whose state is left untouched); the report keeps
    one line per refused row, and every other row was imported.
    """
    job = SubscriberImport.objects.get(pk=job.pk)
    if job.status == SubscriberImport.Status.DONE:
        return job
    SubscriberImport.objects.filter(pk=job.pk).update(
        status=SubscriberImport.Status.RUNNING, heartbeat_at=timezone.now()
    )
    try:
        return _import_run(job)
    except BaseException:
        # Shown as failed, not running forever; running it again resumes where it stopped.
        SubscriberImport.objects.filter(pk=job.pk).update(status=SubscriberImport.Status.FAILED)
        raise


def subscriber_imports_stalled_fail(*, now=None) -> int:
    """Mark imports whose run stopped committing chunks (its worker died and the task
    was lost) as failed, so the editor sees it and can run it again. Returns how many."""
    stalled_before = (now or timezone.now()) - timedelta(seconds=IMPORT_STALL_SECONDS)
    return SubscriberImport.objects.filter(
        status=SubscriberImport.Status.RUNNING, heartbeat_at__lt=stalled_before
    ).update(status=SubscriberImport.Status.FAILED)


def _import_run(job: SubscriberImport) -> SubscriberImport:
    rows = import_file_read(job.content.encode("utf-8"))
    newsletters = list(job.newsletters.all())
    names = ", ".join(n.name for n in newsletters)[:500]
    seen: set[str] = set()
    refused_lines = set(job.refusals.values_list("line", flat=True))
    for row in rows[: job.processed_rows]:
        if row.line not in refused_lines:
            seen.add(email_normalise(row.email))
    offset = job.processed_rows
    for chunk in _chunks(rows[offset:], IMPORT_CHUNK_ROWS):
        for attempt in range(2):
            seen_before = set(seen)
            try:
                if not _import_chunk(job, chunk, newsletters, names, seen, offset):
                    job.refresh_from_db()
                    return job  # another run of this import is ahead of this one
                break
            except IntegrityError:
                # A sign-up took one of these addresses meanwhile: check the chunk again.
                seen.clear()
                seen.update(seen_before)
                if attempt:
                    raise
        offset += len(chunk)
    SubscriberImport.objects.filter(pk=job.pk).update(
        status=SubscriberImport.Status.DONE, finished_at=timezone.now()
    )
    job.refresh_from_db()
    logger.info("newsletter import %s done: %s", job.pk, job.summary)
    return job


def _insert_rows(model, columns: list[str], rows: list[tuple]) -> None:
    if rows:
        rows_write(
            model._meta.db_table, [model._meta.get_field(name).column for name in columns], rows
        )


def _import_insert(job, new_subscribers, newsletters, names) -> int:
    """Insert one chunk's subscribers, their choices and consent records.

    Rows written with COPY on PostgreSQL (outlet/core/bulk.py), values prepared once per
    chunk: the ORM's per-object preparation made a 50,000-row import several times
    slower, and a pipelined executemany spent most of an import binding parameters.
    """
    if not new_subscribers:
        return 0
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    token_field = Subscriber._meta.get_field("token")
    _insert_rows(
        Subscriber,
        ["email", "email_hash", "name", "status", "source", "token", "soft_bounce_count",
         "created_at", "confirmed_at"],
        [
            (email, digest, name, Subscriber.Status.ACTIVE, Subscriber.Source.IMPORT,
             token_field.get_db_prep_value(uuid.uuid4(), connection), 0, now, now)
            for digest, email, name in new_subscribers
        ],
    )  # fmt: skip
    ids = list(
        Subscriber.objects.filter(email_hash__in=[d for d, _e, _n in new_subscribers]).values_list(
            "pk", flat=True
        )
    )
    _insert_rows(
        Subscription,
        ["subscriber", "newsletter", "created_at", "confirmed_at"],
        [(pk, newsletter.pk, now, now) for pk in ids for newsletter in newsletters],
    )
    _insert_rows(
        ConsentRecord,
        ["subscriber", "kind", "created_at", "form", "page_url", "text_shown", "newsletters"],
        [
            (pk, ConsentRecord.Kind.IMPORT, now, f"import #{job.pk}", "", job.consent_text, names)
            for pk in ids
        ],
    )
    return len(ids)


def _import_chunk(job, chunk, newsletters, names, seen, offset) -> bool:
    """Check and import one chunk starting at row `offset`, in one transaction.

    The import row is locked first and must still be at `offset`, so two
    runs of one import (a redelivered task) never both import a chunk.
    """
    with transaction.atomic():
        locked = SubscriberImport.objects.select_for_update().only("processed_rows").get(pk=job.pk)
        if locked.processed_rows != offset:
            return False
        report, created = _import_chunk_rows(job, chunk, newsletters, names, seen)
        SubscriberImportRefusal.objects.bulk_create(
            [
                SubscriberImportRefusal(
                    job_id=job.pk,
                    line=line,
                    address=address,
                    outcome=outcome,
                    message=message[:300],
                )
                for line, address, outcome, message in report
            ]
        )
        SubscriberImport.objects.filter(pk=job.pk).update(
            processed_rows=offset + len(chunk),
            imported_rows=F("imported_rows") + created,
            heartbeat_at=timezone.now(),
        )
    return True


def _import_chunk_rows(job, chunk, newsletters, names, seen) -> tuple[list[list], int]:
    report: list[list] = []
    candidates: dict[str, ImportRow] = {}
    for row in chunk:
        address = email_normalise(row.email)
        try:
            email_validate(address)
        except ValidationError as exc:
            report.append([row.line, row.email, "invalid", " ".join(exc.messages)])
            continue
        if len(row.name) > MAX_NAME_LENGTH:
            report.append([row.line, row.email, "invalid", "The name is too long."])
            continue
        if address in seen:
            report.append([row.line, row.email, "duplicate", "Repeats an earlier row."])
            continue
        seen.add(address)
        candidates[email_digest(address)] = row
    digests = list(candidates)
    suppressed = set(
        Suppression.objects.filter(email_hash__in=digests).values_list("email_hash", flat=True)
    )
    known = set(
        Subscriber.objects.filter(email_hash__in=digests).values_list("email_hash", flat=True)
    )
    new_subscribers = []
    for digest, row in candidates.items():
        if digest in suppressed:
            report.append([row.line, row.email, "suppressed", "On the suppression list."])
        elif digest in known:
            report.append([row.line, row.email, "exists", "Already in the database; unchanged."])
        else:
            new_subscribers.append((digest, email_normalise(row.email), row.name.strip()))
    report.sort()
    return report, _import_insert(job, new_subscribers, newsletters, names)
