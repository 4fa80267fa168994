"""People, sections and tags of an import: each created once, remembered, named as at the source."""

from __future__ import annotations

import hashlib
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.text import slugify

from outlet.articles.models import Author, Section, Tag
from outlet.articles.services import RESERVED_SLUGS

from .models import ImportedItem
from .records import imported_item_find, imported_item_remember
from .redirecting import RedirectBatch
from .report import ImportReport
from .source import SourcePerson, SourceTerm

Kind = ImportedItem.Kind
FALLBACK_SECTION = SourceTerm(source_id="", name="Archive", slug="archive")


def _name_print(name: str) -> str:
    """What a mapping remembers of the name the import gave a row (to tell an editor's rename)."""
    return hashlib.sha256(name.encode()).hexdigest()


def free_slug(model: type[models.Model], base: str, *, own_pk: int | None, suffix: str) -> str:
    """`base` if no other row of `model` has it, else `base-<suffix>` (then -2, -3…)."""
    candidates = [base, f"{base}-{suffix}"] + [f"{base}-{suffix}-{n}" for n in range(2, 50)]
    for candidate in candidates:
        taken = model._default_manager.filter(slug=candidate).exclude(pk=own_pk).exists()
        if not taken and candidate not in RESERVED_SLUGS:
            return candidate
    raise ValidationError(f"no free address for “{base}”")


class TermWriter:
    """Finds or creates the rows posts refer to, once per run each; `report` counts them."""

    def __init__(
        self, *, source: str, report: ImportReport, redirects: RedirectBatch, slug_suffix: str
    ) -> None:
        self.source = source
        self.report = report
        self.redirects = redirects
        self.slug_suffix = slug_suffix
        self._done: dict[tuple[str, str], Any] = {}

    def _named(self, kind: str, model: Any, source_id: str, *, name: str, slug: str) -> Any:
        """The row for a term or person, created once; its name follows the source's
        while the row still has the name the import gave it (an editor's rename stays)."""
        key = (kind, source_id)
        if key in self._done:
            return self._done[key]
        label = f"{kind} {source_id}"
        mapping = imported_item_find(source=self.source, kind=kind, source_id=source_id)
        row = model._default_manager.filter(pk=mapping.object_id).first() if mapping else None
        if row is None:
            row = model._default_manager.filter(slug=slug).first()
            if row is None or row.name != name:
                if model is not Author and model._default_manager.filter(name=name).exists():
                    row = model._default_manager.get(name=name)
                else:
                    suffix = self.slug_suffix
                    row = model(name=name, slug=free_slug(model, slug, own_pk=None, suffix=suffix))
                    row.save()
            imported_item_remember(
                source=self.source,
                kind=kind,
                source_id=source_id,
                object_id=row.pk,
                fingerprint=_name_print(name),
            )
            self.report.record(f"{kind}s", "imported", label=label)
        elif (
            row.name != name
            and mapping is not None
            and mapping.fingerprint == _name_print(row.name)
            and not model._default_manager.filter(name=name).exclude(pk=row.pk).exists()
        ):
            row.name = name
            row.save(update_fields=["name"])
            imported_item_remember(
                source=self.source,
                kind=kind,
                source_id=source_id,
                object_id=row.pk,
                fingerprint=_name_print(name),
            )
            self.report.record(f"{kind}s", "updated", label=label)
        else:
            self.report.record(f"{kind}s", "unchanged", label=label)
        self._done[key] = row
        return row

    def _redirect_once(
        self, kind: str, term: SourcePerson | SourceTerm, row: Any, *, feed: bool = True
    ) -> None:
        """The term's old addresses to its page here (and its feeds to its feed), once a run."""
        key = (kind, f"redirect:{term.source_id}")
        if key in self._done:
            return
        self._done[key] = True
        url = row.get_absolute_url()
        for old in term.old_paths:
            self.redirects.add(old, url)
        for old in term.old_feed_paths:
            self.redirects.add(old, f"{url}feed/" if feed else url)

    def author(self, person: SourcePerson) -> Author:
        author = self._named(
            Kind.AUTHOR,
            Author,
            person.source_id,
            name=person.name[:120],
            slug=slugify(person.slug)[:120] or "author",
        )
        self._redirect_once(Kind.AUTHOR, person, author)
        return author

    def section_exists(self, term: SourceTerm) -> bool:
        """Whether the term is a section here already (made by this import or found)."""
        if (Kind.SECTION, term.source_id) in self._done:
            return True
        mapping = imported_item_find(
            source=self.source, kind=Kind.SECTION, source_id=term.source_id
        )
        known = mapping.object_id if mapping is not None else None
        if known is not None and Section.objects.filter(pk=known).exists():
            return True
        return Section.objects.filter(name=term.name[:80]).exists()

    def section(self, term: SourceTerm | None) -> Section:
        term = term or FALLBACK_SECTION
        section = self._named(
            Kind.SECTION,
            Section,
            term.source_id,
            name=term.name[:80],
            slug=slugify(term.slug)[:80] or "section",
        )
        self._redirect_once(Kind.SECTION, term, section)
        return section

    def tag(self, term: SourceTerm) -> Tag:
        slug = slugify(term.slug)[:80] or "tag"
        tag = self._named(Kind.TAG, Tag, term.source_id, name=term.name[:80], slug=slug)
        self._redirect_once(Kind.TAG, term, tag, feed=False)
        return tag
