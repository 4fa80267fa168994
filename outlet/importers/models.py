"""Where each imported object came from, so a second run updates instead of duplicating."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


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
