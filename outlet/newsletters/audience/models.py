"""Subscriber imports: the upload (its rows stored a chunk at a time), the run's
progress, the addresses it imported and its refused rows (audience/importing.py runs
them). Registered with the newsletters app through its models.py."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class SubscriberImport(models.Model):
    """One CSV upload by an editor, run in chunks, with a report line per refused row.

    The file's rows are kept in the database (`parts`) rather than on disk so a worker
    on another machine can run it; `processed_rows` lets a crashed run resume.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Format(models.TextChoices):
        MAILCHIMP = "mailchimp", _("Mailchimp audience export")
        SUBSTACK = "substack", _("Substack subscriber export")
        GHOST = "ghost", _("Ghost members CSV")
        CSV = "csv", _("CSV (email, name)")

    filename = models.CharField(max_length=200)
    format = models.CharField(max_length=10, choices=Format.choices, default=Format.CSV)
    newsletters = models.ManyToManyField("newsletters.Newsletter", related_name="+")
    consent_text = models.TextField(help_text="How the people in the file gave consent.")
    created_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    imported_rows = models.PositiveIntegerField(default=0)
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="When a chunk last committed; a stalled run is failed."
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Import #{self.pk} ({self.filename})"

    @property
    def percent_done(self) -> int:
        return round(100 * self.processed_rows / self.total_rows) if self.total_rows else 100

    @property
    def retention_days(self) -> int:
        from django.conf import settings

        return settings.NEWSLETTER_IMPORT_RETENTION_DAYS

    @property
    def rows_expired(self) -> bool:
        """Finished (or failed and left alone) longer ago than NEWSLETTER_IMPORT_RETENTION_DAYS:
        its stored rows and refused addresses are deleted (audience/retention.py),
        its counts kept."""
        from datetime import datetime, timedelta

        ended: datetime | None
        if self.status == self.Status.FAILED:  # a failed run left alone that long
            ended = self.heartbeat_at or self.created_at
        elif self.status == self.Status.DONE:
            ended = self.finished_at
        else:
            return False
        if ended is None:
            return False
        return ended < timezone.now() - timedelta(days=self.retention_days)

    @property
    def summary(self) -> dict[str, int]:
        counts: dict[str, int] = {"imported": self.imported_rows} if self.imported_rows else {}
        for row in self.refusals.values("outcome").annotate(n=models.Count("id")):
            counts[row["outcome"]] = row["n"]
        return counts


class SubscriberImportPart(models.Model):
    """Consecutive data rows of an import's file, as read at upload, a chunk's worth:
    the upload, a run and the report each hold one part in memory at a time, never
    the whole file (a million rows)."""

    job = models.ForeignKey(SubscriberImport, on_delete=models.CASCADE, related_name="parts")
    first_row = models.PositiveIntegerField(help_text="Its first row's index among the data rows.")
    rows = models.JSONField(
        help_text="One list per row, as read from the file: [line, email, name, …] "
        "(audience/formats.py: record_as_row)."
    )

    class Meta:
        ordering = ["job_id", "first_row"]
        constraints = [
            models.UniqueConstraint(fields=["job", "first_row"], name="import_part_once")
        ]

    def __str__(self) -> str:
        return f"Import #{self.job_id}, rows from {self.first_row}"


class SubscriberImportAddress(models.Model):
    """An address an import's earlier row imported (its digest): a later row repeating
    it is a duplicate, whatever the subscriber did since (a changed address, an
    unsubscribe). Written with the chunk that imported it; dropped when the import is done."""

    job = models.ForeignKey(SubscriberImport, on_delete=models.CASCADE, related_name="+")
    email_hash = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "email_hash"], name="import_address_once")
        ]

    def __str__(self) -> str:
        return f"Import #{self.job_id}: {self.email_hash[:12]}"


class SubscriberImportRefusal(models.Model):
    """One refused row of an import (every other row was imported). Rows of their own,
    so each chunk adds its lines without rewriting the ones before: linear in rows."""

    job = models.ForeignKey(SubscriberImport, on_delete=models.CASCADE, related_name="refusals")
    line = models.PositiveIntegerField()
    address = models.TextField(help_text="As given in the file.")
    outcome = models.CharField(max_length=20)
    message = models.CharField(max_length=300)

    class Meta:
        ordering = ["job_id", "line"]
        constraints = [
            models.UniqueConstraint(fields=["job", "line"], name="import_refusal_once_per_line")
        ]

    def __str__(self) -> str:
        return f"Import #{self.job_id}, line {self.line}: {self.outcome}"

    def as_row(self) -> list:
        return [self.line, self.address, self.outcome, self.message]
