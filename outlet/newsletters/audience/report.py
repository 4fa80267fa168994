"""An import's report: its counts in four words an editor reads the same way whatever the
source (imported, suppressed, refused, duplicates), and the lines `subscribers_import`
prints, the last one `subscribers_import: format=… imported=… suppressed=… refused=…
duplicates=…`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from outlet.newsletters.models import ConsentRecord, SubscriberImport

#: Which report word each refusal outcome counts under.
_COUNTED_AS = {
    "suppressed": "suppressed",  # suppressed here before, or marked so by the source
    "invalid": "refused",
    "duplicate": "duplicates",  # repeats an earlier row of the file
    "exists": "duplicates",  # already on the list (a second run of the same file)
}
#: Refused rows printed by the command; the rest are in the admin's CSV report.
PRINTED_REFUSALS = 200


def subscriber_import_counts(*, job: SubscriberImport) -> dict[str, int]:
    counts = {"imported": job.imported_rows, "suppressed": 0, "refused": 0, "duplicates": 0}
    for outcome, n in job.summary.items():
        if outcome != "imported":
            counts[_COUNTED_AS.get(outcome, "refused")] += n
    return counts


def subscriber_import_last_line(*, job: SubscriberImport) -> str:
    counts = subscriber_import_counts(job=job)
    return "subscribers_import: format={} {}".format(
        job.format, " ".join(f"{word}={n}" for word, n in counts.items())
    )


def subscriber_import_report_lines(
    *,
    job: SubscriberImport,
    members: Sequence[str] = (),
    skipped: Sequence[str] = (),
) -> Iterator[str]:
    """The command's report: what was read, each refused row (the first
    PRINTED_REFUSALS), what consent was recorded, then the counts."""
    newsletters = ", ".join(n.name for n in job.newsletters.all())
    yield (
        f"“{job.filename}”: {job.get_format_display()}, {job.total_rows} rows, into {newsletters}."
    )
    if members:
        yield "Files read in this order (lines count on from one to the next): " + ", ".join(
            members
        )
    if skipped:
        yield "Files skipped (no email column): " + ", ".join(skipped)
    refusals = job.refusals.order_by("line")
    for refusal in refusals[:PRINTED_REFUSALS]:
        yield f"line {refusal.line} {refusal.address}: {refusal.outcome}: {refusal.message}"
    if (more := refusals.count() - PRINTED_REFUSALS) > 0:
        yield f"… and {more} more rows not imported (the admin's import page has them all)."
    records = ConsentRecord.objects.filter(form=f"import #{job.pk}")
    with_optin = records.filter(opted_in_at__isnull=False).count()
    with_confirm = records.filter(confirmed_at__isnull=False).count()
    with_stripe = records.filter(source__contains="Stripe customer: ").count()
    yield (
        f"Consent: {job.imported_rows} records (no confirmation email sent); "
        f"opt-in time from the file for {with_optin}, confirmation time for {with_confirm}; "
        f"every record also names the platform and the file, with the statement "
        f"“{job.consent_text}”."
    )
    if with_stripe:
        yield (
            f"Stripe customer ids kept on {with_stripe} consent records "
            "(no donor or donation was made of them)."
        )
    yield subscriber_import_last_line(job=job)
