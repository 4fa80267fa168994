"""Reading and writing `ImportedItem`: where an imported object came from."""

from __future__ import annotations

from .models import ImportedItem


def imported_item_find(*, source: str, kind: str, source_id: str) -> ImportedItem | None:
    return ImportedItem.objects.filter(source=source, kind=kind, source_id=source_id).first()


def imported_item_remember(
    *,
    source: str,
    kind: str,
    source_id: str,
    object_id: int | None,
    fingerprint: str = "",
    location: str = "",
) -> ImportedItem:
    """Record (or update) what `source`'s `kind` `source_id` became here."""
    item, _ = ImportedItem.objects.update_or_create(
        source=source,
        kind=kind,
        source_id=source_id,
        defaults={"object_id": object_id, "fingerprint": fingerprint, "location": location},
    )
    return item
