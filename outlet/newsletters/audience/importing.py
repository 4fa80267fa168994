"""Subscriber import: read an export (formats.py, reading.py), then create the
subscribers, their confirmed subscriptions and consent records, and the suppressions the
source asks for, in chunks a run can resume from, with a per-row report of refusals.

An import is a `SubscriberImport` row; `subscriber_import_run` (from the admin, the
`subscribers_import` command or its task) commits one chunk at a time and records how
far it got, so a crashed run resumes where it stopped and beat's tick fails one that
stopped committing. Imported readers get no confirmation email: their consent record
says where consent came from (the file's opt-in and confirmation times and IPs where the
format has them, else the platform, the file and the editor's statement).
"""

from __future__ import annotations

import io
import itertools
import logging
import uuid
from collections.abc import Iterable
from datetime import timedelta
from typing import IO

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from outlet.core.addresses import email_digest, email_normalise
from outlet.core.bulk import rows_write
from outlet.newsletters.audience.formats import (
    AUTO,
    AudienceRecord,
    ImportFileError,
    Status,
    record_as_row,
    record_from_row,
)
from outlet.newsletters.audience.reading import audience_file_open
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
from outlet.newsletters.services import MAX_NAME_LENGTH, email_hash_suppress, email_validate

logger = logging.getLogger(__name__)


IMPORT_CHUNK_ROWS = 1000
#: Parts written to the database per INSERT while an upload is read.
PARTS_PER_WRITE = 20
#: A running import that committed no chunk for this long is shown as failed.
IMPORT_STALL_SECONDS = 15 * 60

#: The suppression each status the source gives becomes, and the report's words for it.
_SUPPRESSION_FOR_STATUS: dict[str, tuple[str, str]] = {
    Status.UNSUBSCRIBED: (Suppression.Reason.UNSUBSCRIBED, "Unsubscribed at {platform}"),
    Status.CLEANED: (Suppression.Reason.CLEANED, "Cleaned (undeliverable) at {platform}"),
    Status.BOUNCED: (Suppression.Reason.HARD_BOUNCE, "Bounced at {platform}"),
    Status.EMAIL_DISABLED: (Suppression.Reason.EMAIL_DISABLED, "Email disabled at {platform}"),
    Status.COMPLAINED: (Suppression.Reason.COMPLAINT, "Marked as spam at {platform}"),
}
_PLATFORMS = {"mailchimp": "Mailchimp", "substack": "Substack", "ghost": "Ghost", "csv": "CSV"}

__all__ = [
    "IMPORT_CHUNK_ROWS",
    "ImportFileError",
    "subscriber_import_create",
    "subscriber_import_run",
    "subscriber_imports_stalled_fail",
]


def subscriber_import_create(
    *,
    data: bytes | IO[bytes],
    filename: str,
    newsletters: Iterable[Newsletter],
    consent_confirmed: bool,
    consent_text: str,
    created_by=None,
    source_format: str = AUTO,
) -> SubscriberImport:
    """Check an upload (bytes or a binary file, read once, a chunk at a time) and record
    it as an import to run (see subscriber_import_run); a file that cannot be read
    records nothing.

    `source_format` is "auto" (recognised from the header row) or one of
    SubscriberImport.Format, which the file must then be.
    """
    if not consent_confirmed:
        raise ValidationError(
            "Confirm that everyone in the file agreed to receive these newsletters."
        )
    chosen = list(newsletters)
    if not chosen:
        raise ValidationError("Choose at least one newsletter.")
    stream = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        source = audience_file_open(stream, requested=source_format)
    except ImportFileError as exc:
        raise ValidationError(str(exc)) from exc
    with transaction.atomic():
        job = SubscriberImport.objects.create(
            filename=filename[:200],
            format=source.format,
            consent_text=consent_text,
            created_by=created_by,
        )
        total, parts = 0, []
        try:
            for chunk in itertools.batched(source.records(), IMPORT_CHUNK_ROWS):
                rows = [record_as_row(record) for record in chunk]
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
    belongs to a subscriber (whose state is left untouched); a row the source
    marks unsubscribed, cleaned, bounced or disabled is suppressed instead; the
    report keeps one line per such row, and every other row was imported.
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
        chunk = [record_from_row(row) for row in part.rows]
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
    `new_subscribers` holds (digest, address, record) for each.
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
            (email, digest, record.name.strip(), Subscriber.Status.ACTIVE,
             Subscriber.Source.IMPORT, token_field.get_db_prep_value(uuid.uuid4(), connection),
             0, now, now)
            for digest, email, record in new_subscribers
        ],
    )  # fmt: skip
    digests = [digest for digest, _email, _record in new_subscribers]
    _insert_rows(SubscriberImportAddress, ["job", "email_hash"], [(job.pk, d) for d in digests])
    ids = dict(Subscriber.objects.filter(email_hash__in=digests).values_list("email_hash", "pk"))
    _insert_rows(
        Subscription,
        ["subscriber", "newsletter", "created_at", "confirmed_at"],
        [(pk, newsletter.pk, now, now) for pk in ids.values() for newsletter in newsletters],
    )
    when = connection.ops.adapt_datetimefield_value
    _insert_rows(
        ConsentRecord,
        ["subscriber", "kind", "created_at", "form", "page_url", "text_shown", "newsletters",
         "source", "opted_in_at", "opted_in_ip", "confirmed_at", "confirmed_ip"],
        [
            (ids[digest], ConsentRecord.Kind.IMPORT, now, f"import #{job.pk}", "",
             job.consent_text, names, consent_source(job=job, record=record),
             when(record.opted_in_at), record.opted_in_ip or None,
             when(record.confirmed_at), record.confirmed_ip or None)
            for digest, _email, record in new_subscribers
        ],
    )  # fmt: skip
    return len(ids)


def consent_source(*, job: SubscriberImport, record: AudienceRecord) -> str:
    """Where an imported reader's consent came from, as their consent record keeps it:
    the platform, the file and the import, then what the file says of them (plan, Stripe
    customer, labels, newsletters). A Stripe customer id is kept here only: no donation
    or donor is made of it."""
    parts = [f"{_PLATFORMS.get(job.format, job.format)} export “{job.filename}”, import #{job.pk}"]
    if record.plan:
        parts.append(f"plan: {record.plan}")
    if record.stripe_customer_id:
        parts.append(f"Stripe customer: {record.stripe_customer_id}")
    if record.labels:
        parts.append(f"labels: {', '.join(record.labels)}")
    if record.newsletters:
        parts.append(f"newsletters: {', '.join(record.newsletters)}")
    return "; ".join(parts)


def _import_suppress(job, suppressions) -> None:
    """Suppress the addresses the source marked unsubscribed, cleaned, bounced or disabled
    (never subscribers); remembered like an imported address, so a later row repeating
    one is a duplicate. `suppressions` holds (digest, status) for each."""
    if not suppressions:
        return
    platform = _PLATFORMS.get(job.format, job.format)
    detail = f"{platform} export “{job.filename}”, import #{job.pk}"[:300]
    Suppression.objects.bulk_create(
        [
            Suppression(email_hash=digest, reason=_SUPPRESSION_FOR_STATUS[status][0], detail=detail)
            for digest, status in suppressions
        ],
        ignore_conflicts=True,
    )
    _insert_rows(
        SubscriberImportAddress,
        ["job", "email_hash"],
        [(job.pk, digest) for digest, _status in suppressions],
    )


UNKNOWN_STATUS = (
    "The status column holds a word this import does not know (it knows subscribed, "
    "unsubscribed, cleaned, bounced, complained, disabled and their usual synonyms); "
    "the row was left out."
)


def _suppressing(record: AudienceRecord) -> bool:
    return record.status in _SUPPRESSION_FOR_STATUS


def _import_withdraw(job, withdrawn) -> None:
    """Suppress addresses this import subscribed from an earlier row that a later row
    marks unsubscribed, cleaned, bounced or disabled (the subscriber stops being active,
    as after a bounce or an unsubscribe). `withdrawn` holds (digest, status) for each."""
    platform = _PLATFORMS.get(job.format, job.format)
    detail = f"{platform} export “{job.filename}”, import #{job.pk}"[:300]
    for digest, status in withdrawn:
        email_hash_suppress(
            email_hash=digest, reason=_SUPPRESSION_FOR_STATUS[status][0], detail=detail
        )


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
    """Check one chunk's records against the database and import the new addresses.

    A row repeating an address an earlier row of the file imported (or suppressed) is a
    "duplicate", found in this chunk or among the import's SubscriberImportAddress rows,
    so no run keeps the addresses of the rows before; a row repeating a refused one is
    refused the same way. An address suppressed here stays suppressed, and one already
    a subscriber is left as it is, whatever the file says of it.
    """
    report: list[list] = []
    firsts: dict[str, AudienceRecord] = {}
    repeats: list[tuple[str, AudienceRecord]] = []
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
        if row.status == Status.UNKNOWN:
            report.append([row.line, row.email, "invalid", UNKNOWN_STATUS])
            continue
        digest = email_digest(address)
        first = firsts.get(digest)
        if first is None:
            firsts[digest] = row
        elif _suppressing(row) and not _suppressing(first):
            # What the source says against an address wins over a row subscribing it.
            firsts[digest] = row
            repeats.append((digest, first))
        else:
            repeats.append((digest, row))
    digests = list(firsts)
    imported_before = set(
        SubscriberImportAddress.objects.filter(job_id=job.pk, email_hash__in=digests).values_list(
            "email_hash", flat=True
        )
    )
    # Subscribers before suppressions: an erasure commits both at once (suppression
    # added, subscriber deleted), so read in this order it cannot slip between them.
    known = dict(
        Subscriber.objects.filter(email_hash__in=digests).values_list("email_hash", "source")
    )
    suppressed = set(
        Suppression.objects.filter(email_hash__in=digests).values_list("email_hash", flat=True)
    )
    platform = _PLATFORMS.get(job.format, job.format)
    duplicate = ["duplicate", "Repeats an earlier row."]
    refusals: dict[str, list[str]] = {}
    new_subscribers, suppressions, marked, withdrawn = [], [], set(), []
    for digest, row in firsts.items():
        if digest in imported_before and digest in known and digest not in suppressed:
            if _suppressing(row):
                # An earlier chunk of this file subscribed the address a later row marks
                # unsubscribed (or cleaned…): the source's word against it wins.
                words = _SUPPRESSION_FOR_STATUS[Status(row.status)][1].format(platform=platform)
                refusals[digest] = [
                    "suppressed",
                    f"{words}: added to the suppression list; the subscriber an earlier "
                    "row imported is no longer active.",
                ]
                withdrawn.append((digest, row.status))
            else:
                refusals[digest] = duplicate
        elif digest in imported_before:
            refusals[digest] = duplicate
        elif digest in suppressed:
            refusals[digest] = ["suppressed", "On the suppression list."]
        elif digest in known and _suppressing(row):
            words = _SUPPRESSION_FOR_STATUS[Status(row.status)][1].format(platform=platform)
            if known[digest] == Subscriber.Source.IMPORT:
                # Brought here by an earlier import: the newer export's word about the
                # consent that import relied on wins.
                refusals[digest] = [
                    "suppressed",
                    f"{words}: added to the suppression list; the subscriber an earlier "
                    "import added is no longer active.",
                ]
                withdrawn.append((digest, row.status))
            else:
                refusals[digest] = [
                    "exists",
                    f"{words}, but signed up here, where their choice stands; unchanged.",
                ]
        elif digest in known:
            refusals[digest] = ["exists", "Already in the database; unchanged."]
        elif row.status in _SUPPRESSION_FOR_STATUS:
            words = _SUPPRESSION_FOR_STATUS[Status(row.status)][1].format(platform=platform)
            refusals[digest] = ["suppressed", f"{words}: added to the suppression list."]
            suppressions.append((digest, row.status))
            marked.add(digest)
        else:
            new_subscribers.append((digest, email_normalise(row.email), row))
            continue
        report.append([row.line, row.email, *refusals[digest]])
    for digest, row in repeats:
        said = duplicate if digest in marked else refusals.get(digest, duplicate)
        report.append([row.line, row.email, *said])
    report.sort()
    _import_suppress(job, suppressions)
    _import_withdraw(job, withdrawn)
    return report, _import_insert(job, new_subscribers, newsletters, names)
