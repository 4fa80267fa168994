"""Where each imported object came from, so a second run updates instead of duplicating."""

from __future__ import annotations

from django.core.files.storage import storages
from django.db import models
from django.utils.translation import gettext_lazy as _

#: How each source spells its own name (the command's and the database's are lower case).
SOURCE_NAMES = {"wordpress": "WordPress", "ghost": "Ghost", "substack": "Substack"}


def imports_storage():
    return storages["imports"]


class ImportedItem(models.Model):
    """One object of another platform's export and what it became here.

    `(source, kind, source_id)` is unique: `source` names the site it came from
    (e.g. ``wordpress:old.example.org``), `source_id` its id there. `fingerprint`
    is a hash of what the converters produced, so an unchanged item is not
    written again; `location` is the stored file name of an imported image.
    """

    class Kind(models.TextChoices):
        ARTICLE = "article", _("Article")
        PAGE = "page", _("Page")
        AUTHOR = "author", _("Author")
        SECTION = "section", _("Section")
        TAG = "tag", _("Tag")
        IMAGE = "image", _("Image")

    source = models.CharField(_("source"), max_length=120)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    source_id = models.CharField(_("id at the source"), max_length=200)
    object_id = models.PositiveBigIntegerField(_("id here"), null=True, blank=True)
    location = models.CharField(_("stored file"), max_length=300, blank=True)
    fingerprint = models.CharField(max_length=64, blank=True, editable=False)
    imported_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("imported item")
        constraints = [
            models.UniqueConstraint(
                fields=["source", "kind", "source_id"], name="imported_item_once_per_source"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.kind} {self.source_id}"


class ArchiveImport(models.Model):
    """An export uploaded in the admin and imported by a worker; its report kept to read."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    source = models.CharField(_("source"), max_length=20, default="wordpress")
    upload = models.FileField(_("export file"), upload_to="archive/%Y/%m/", storage=imports_storage)
    media_from_site = models.BooleanField(
        _("fetch images from the old site"),
        default=False,
        help_text=_("Fetched from the addresses in the export (public sites only)."),
    )
    dry_run = models.BooleanField(
        _("dry run"), default=False, help_text=_("Report what would happen; write nothing.")
    )
    author = models.CharField(
        _("author"),
        max_length=120,
        blank=True,
        help_text=_("Substack only: who wrote the posts (empty: the publication's name)."),
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.QUEUED
    )
    summary = models.CharField(_("summary"), max_length=400, blank=True)
    report = models.TextField(_("report"), blank=True)
    created_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # Written every HEARTBEAT_SECONDS while a worker runs it: a run that stops beating
    # lost its worker, and is run again (services.archive_imports_stalled_resume).
    heartbeat_at = models.DateTimeField(null=True, blank=True, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("archive import")

    def __str__(self) -> str:
        return _("%(source)s import #%(number)s") % {
            "source": SOURCE_NAMES.get(self.source, self.source),
            "number": self.pk,
        }
