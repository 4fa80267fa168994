"""What imports keep of an address, and for how long: an erasure cuts it out of every
stored import (the rows of its file and its refusals), and beat forgets the rows of
imports finished long ago (NEWSLETTER_IMPORT_RETENTION_DAYS), keeping their counts."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from outlet.core.addresses import email_normalise
from outlet.newsletters.models import (
    SubscriberImport,
    SubscriberImportPart,
    SubscriberImportRefusal,
)

logger = logging.getLogger(__name__)

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


def _row_erased(row: list) -> list:
    """A stored row without its person: the line stays, every other value goes (the name,
    and for a platform's export the consent IPs, Stripe customer id and labels)."""
    return [row[0], ERASED_ROW_EMAIL, ""]


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
        rows = [_row_erased(row) if _row_names(row[1], address) else row for row in part.rows]
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
