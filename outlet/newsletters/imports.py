"""Subscriber CSV import: read a file, then create the subscribers and their confirmed
subscriptions in chunks a run can resume from, with a per-row report of refusals.

An import is a `SubscriberImport` row; `subscriber_import_run` (from the admin or its
task) commits one chunk at a time and records how far it got, so a crashed run resumes
where it stopped and beat's tick fails one that stopped committing.
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import IO

from django.core.exceptions import ValidationError
from django.core.files.base import File
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from outlet.core.addresses import email_digest, email_normalise
from outlet.core.bulk import rows_write
from outlet.newsletters.models import (
    ConsentRecord,
    Newsletter,
    Subscriber,
    SubscriberImport,
    SubscriberImportAddress,
    SubscriberImportPart,
    SubscriberImportRefusal,
    Subscription,
    Suppression,
)
from outlet.newsletters.services import MAX_NAME_LENGTH, email_validate

logger = logging.getLogger(__name__)


IMPORT_CHUNK_ROWS = 1000
#: Parts written to the database per INSERT while an upload is read.
PARTS_PER_WRITE = 20
#: A running import that committed no chunk for this long is shown as failed.
IMPORT_STALL_SECONDS = 15 * 60


class ImportFileError(ValueError):
    """The file as a whole cannot be read: wrong encoding, no header, wrong columns."""


@dataclass(frozen=True, slots=True)
class ImportRow:
    line: int
    email: str
    name: str


def import_file_rows(stream: IO[bytes]) -> Iterator[ImportRow]:
    """The data rows of an uploaded CSV, read as they come (a million-row file is never
    held whole); raise ImportFileError, with a message fit for an editor, on the row
    where the file stops being readable.

    The file must be UTF-8 (a BOM is fine) with a header row naming an
    `email` column; `name` is optional, other columns are ignored.
    """
    lines = _lines_decoded(stream)
    reader = csv.reader(lines)
    try:
        yield from _rows_read(reader)
    except csv.Error as exc:
        raise ImportFileError(f"Line {reader.line_num} cannot be read: {exc}") from exc


def _lines_decoded(stream: IO[bytes]) -> Iterator[str]:
    """The file's lines as text, one at a time (any line ending, as Django's File reads
    them); a line that is not UTF-8 stops the file, naming its number."""
    for number, raw in enumerate(File(stream), start=1):
        try:
            yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            raise ImportFileError(
                f"The file is not UTF-8 text (a bad byte on line {number}). "
                "Export it again as “CSV UTF-8”."
            ) from None


def _rows_read(reader) -> Iterator[ImportRow]:
    try:
        header = [column.strip().lower() for column in next(reader)]
    except StopIteration:
        raise ImportFileError("The file is empty.") from None
    if any("\x00" in column for column in header):
        raise ImportFileError("The file looks binary, not CSV.")
    if "email" not in header:
        raise ImportFileError(
            "The first row must name the columns and include “email” (and optionally “name”); "
            f"found: {', '.join(header) or 'nothing'}."
        )
    email_at = header.index("email")
    name_at = header.index("name") if "name" in header else None
    for values in reader:
        if not any(value.strip() for value in values):
            continue
        if any("\x00" in value for value in values):
            raise ImportFileError(f"Line {reader.line_num} holds binary data, not CSV text.")
        yield ImportRow(
            line=reader.line_num,
            email=values[email_at] if email_at < len(values) else "",
            name=values[name_at] if name_at is not None and name_at < len(values) else "",
        )


def subscriber_import_create(
    *,
    data: bytes | IO[bytes],
    filename: str,
    newsletters: Iterable[Newsletter],
    consent_confirmed: bool,
    consent_text: str,
    created_by=None,
) -> SubscriberImport:
    """Check an upload (bytes or a binary file, read once, a chunk at a time) and record
    it as an import to run (see subscriber_import_run); a file that cannot be read
    records nothing."""
    if not consent_confirmed:
        raise ValidationError(
            "Confirm that everyone in the file agreed to receive these newsletters."
        )
    chosen = list(newsletters)
    if not chosen:
        raise ValidationError("Choose at least one newsletter.")
    stream = io.BytesIO(data) if isinstance(data, bytes) else data
    with transaction.atomic():
        job = SubscriberImport.objects.create(
            filename=filename[:200], consent_text=consent_text, created_by=created_by
        )
        total, parts = 0, []
        try:
            for chunk in itertools.batched(import_file_rows(stream), IMPORT_CHUNK_ROWS):
                rows = [[row.line, row.email, row.name] for row in chunk]
                parts.append(SubscriberImportPart(job=job, first_row=total, rows=rows))
                total += len(rows)
                if len(parts) == PARTS_PER_WRITE:
                    SubscriberImportPart.objects.bulk_create(parts)
                    parts = []
        except ImportFileError as exc:
            raise ValidationError(str(exc)) from exc  # and the transaction rolls back
        SubscriberImportPart.objects.bulk_create(parts)
        if not total:
            raise ValidationError("The file has a header but no rows.")
        SubscriberImport.objects.filter(pk=job.pk).update(total_rows=total)
        job.total_rows = total
        job.newsletters.set(chosen)
    return job


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
    SubscriberImport.objects.filter(pk=job.pk).exclude(status=SubscriberImport.Status.DONE).update(
        status=SubscriberImport.Status.RUNNING, heartbeat_at=timezone.now()
    )  # a run finishing meanwhile stays done
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
    newsletters = list(job.newsletters.all())
    names = ", ".join(n.name for n in newsletters)[:500]
    offset = job.processed_rows
    while offset < job.total_rows:
        part = job.parts.filter(first_row=offset).first()
        if part is None:
            raise RuntimeError(f"import {job.pk}: no stored rows from row {offset}")
        chunk = [ImportRow(line, email, name) for line, email, name in part.rows]
        for attempt in range(2):
            try:
                if not _import_chunk(job, chunk, newsletters, names, offset):
                    job.refresh_from_db()
                    return job  # another run of this import is ahead of this one
                break
            except IntegrityError:
                # A sign-up took one of these addresses meanwhile: check the chunk again.
                if attempt:
                    raise
        offset += len(chunk)
    SubscriberImport.objects.filter(pk=job.pk).update(
        status=SubscriberImport.Status.DONE, finished_at=timezone.now()
    )
    SubscriberImportAddress.objects.filter(job_id=job.pk).delete()  # needed no more
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
    digests = [digest for digest, _email, _name in new_subscribers]
    _insert_rows(SubscriberImportAddress, ["job", "email_hash"], [(job.pk, d) for d in digests])
    ids = list(Subscriber.objects.filter(email_hash__in=digests).values_list("pk", flat=True))
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


def _import_chunk(job, chunk, newsletters, names, offset) -> bool:
    """Check and import one chunk starting at row `offset`, in one transaction.

    The import row is locked first and must still be at `offset`, so two
    runs of one import (a redelivered task) never both import a chunk.
    """
    with transaction.atomic():
        locked = SubscriberImport.objects.select_for_update().only("processed_rows").get(pk=job.pk)
        if locked.processed_rows != offset:
            return False
        report, created = _import_chunk_rows(job, chunk, newsletters, names)
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


def _import_chunk_rows(job, chunk, newsletters, names) -> tuple[list[list], int]:
    """Check one chunk's rows against the database and import the new addresses.

    A row repeating an address an earlier row of the file imported is a "duplicate",
    found in this chunk or among the import's SubscriberImportAddress rows, so no run
    keeps the addresses of the rows before; a row repeating a refused one is refused
    the same way.
    """
    report: list[list] = []
    firsts: dict[str, ImportRow] = {}
    repeats: list[tuple[str, ImportRow]] = []
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
        digest = email_digest(address)
        if digest in firsts:
            repeats.append((digest, row))
        else:
            firsts[digest] = row
    digests = list(firsts)
    imported_before = set(
        SubscriberImportAddress.objects.filter(job_id=job.pk, email_hash__in=digests).values_list(
            "email_hash", flat=True
        )
    )
    # Subscribers before suppressions: an erasure commits both at once (suppression
    # added, subscriber deleted), so read in this order it cannot slip between them.
    known = set(
        Subscriber.objects.filter(email_hash__in=digests).values_list("email_hash", flat=True)
    )
    suppressed = set(
        Suppression.objects.filter(email_hash__in=digests).values_list("email_hash", flat=True)
    )
    duplicate = ["duplicate", "Repeats an earlier row."]
    refusals: dict[str, list[str]] = {}
    new_subscribers = []
    for digest, row in firsts.items():
        if digest in imported_before:
            refusals[digest] = duplicate
        elif digest in suppressed:
            refusals[digest] = ["suppressed", "On the suppression list."]
        elif digest in known:
            refusals[digest] = ["exists", "Already in the database; unchanged."]
        else:
            new_subscribers.append((digest, email_normalise(row.email), row.name.strip()))
            continue
        report.append([row.line, row.email, *refusals[digest]])
    for digest, row in repeats:
        report.append([row.line, row.email, *refusals.get(digest, duplicate)])
    report.sort()
    return report, _import_insert(job, new_subscribers, newsletters, names)


# --- What imports keep of an address ---------------------------------------------

ERASED_ROW_EMAIL = ""


def _parts_that_may_hold(address: str):
    """Stored parts whose text may hold `address`: found by the database when the address
    is plain ASCII (the text of a JSON column may escape anything else), otherwise every
    part, each checked row by row by the caller."""
    parts = SubscriberImportPart.objects.order_by("pk")
    if address.isascii():
        parts = parts.filter(rows__icontains=address)
    return parts


#: What may stand next to an address in a refused row and still end it: anything but a
#: character an address may hold there ("Ada <a@b.org>", "mailto:a@b.org", "a@b.org.").
_BEFORE_ADDRESS = r"(?<![a-z0-9!#$%&'*+/=?^_`{|}~.-])"
_AFTER_ADDRESS = r"(?![a-z0-9-]|\.[a-z0-9])"


def _row_names(given: str, address: str) -> bool:
    """Whether an import row's email cell names `address`: as itself, or wrapped in what
    the file put around it (a refused row keeps the cell as given), not as the tail or
    head of a longer address."""
    given = email_normalise(given)
    if given == address:
        return True
    pattern = _BEFORE_ADDRESS + re.escape(address) + _AFTER_ADDRESS
    return address in given and re.search(pattern, given) is not None


def subscriber_imports_address_erase(*, email: str) -> int:
    """Cut an address out of every stored import: its rows in the stored parts keep their
    line but lose the address and the name given with it, and its refusals lose the
    address (the counts stay). A run still to reach the row finds an empty address and
    refuses it. Part of an erasure (readers.services.address_erase), in its transaction.
    Returns how many rows were cut."""
    address = email_normalise(email)
    if not address:
        return 0
    cut = 0
    for part in _parts_that_may_hold(address).select_for_update().iterator(chunk_size=10):
        rows = [
            [line, ERASED_ROW_EMAIL, ""] if _row_names(given, address) else [line, given, name]
            for line, given, name in part.rows
        ]
        if rows != part.rows:
            cut += sum(1 for old, new in zip(part.rows, rows, strict=True) if old != new)
            SubscriberImportPart.objects.filter(pk=part.pk).update(rows=rows)
    refusals = SubscriberImportRefusal.objects.all()
    if address.isascii():
        refusals = refusals.filter(address__icontains=address)
    erased = [
        pk
        for pk, given in refusals.values_list("pk", "address").iterator(chunk_size=2000)
        if _row_names(given, address)
    ]
    SubscriberImportRefusal.objects.filter(pk__in=erased).update(address=ERASED_ROW_EMAIL)
    return cut + len(erased)


def subscriber_imports_expire(*, now=None) -> int:
    """Forget the rows of imports finished more than NEWSLETTER_IMPORT_RETENTION_DAYS ago
    (a failed run left alone as long ago counts: it is not run again that late):
    their stored parts are deleted and their refusals lose their addresses; the import's
    row, its counts and its refusals' reasons stay. Beat runs it daily. Returns how many
    imports were expired."""
    from django.conf import settings

    cutoff = (now or timezone.now()) - timedelta(days=settings.NEWSLETTER_IMPORT_RETENTION_DAYS)
    finished = SubscriberImport.objects.annotate(
        last_run_at=Coalesce("heartbeat_at", "created_at")
    ).filter(
        Q(status=SubscriberImport.Status.DONE, finished_at__lt=cutoff)
        | Q(status=SubscriberImport.Status.FAILED, last_run_at__lt=cutoff)
    )
    expired = 0
    for job_id in finished.values_list("pk", flat=True).iterator():
        with transaction.atomic():
            deleted, _ = SubscriberImportPart.objects.filter(job_id=job_id).delete()
            blanked = (
                SubscriberImportRefusal.objects.filter(job_id=job_id)
                .exclude(address=ERASED_ROW_EMAIL)
                .update(address=ERASED_ROW_EMAIL)
            )
        expired += 1 if deleted or blanked else 0
    if expired:
        logger.info("newsletter imports: the rows of %s finished import(s) forgotten", expired)
    return expired
