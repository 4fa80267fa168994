"""The donor's self-service link: signed, expiring, good for managing gifts only."""

from __future__ import annotations

from django.conf import settings
from django.core import signing

from .models import Donor

_SALT = "outlet.donations.manage"
_PURPOSE = "manage-gifts"


def manage_token_make(*, donor: Donor) -> str:
    return signing.dumps({"donor": donor.pk, "purpose": _PURPOSE}, salt=_SALT, compress=True)


def manage_token_read(*, token: str) -> Donor | None:
    """The donor the token was made for, or None when it is forged, for another
    purpose, or older than DONATION_MANAGE_LINK_MAX_AGE."""
    try:
        data = signing.loads(token, salt=_SALT, max_age=settings.DONATION_MANAGE_LINK_MAX_AGE)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or data.get("purpose") != _PURPOSE:
        return None
    donor_id = data.get("donor")
    if not isinstance(donor_id, int):
        return None
    return Donor.objects.filter(pk=donor_id).first()


def checkout_token_make(*, donation_id: int) -> str:
    """Names the donation a browser is paying for, so it cannot act on another one."""
    return signing.dumps(donation_id, salt=f"{_SALT}.checkout")


def checkout_token_read(*, token: str) -> int | None:
    try:
        value = signing.loads(token, salt=f"{_SALT}.checkout", max_age=24 * 3600)
    except signing.BadSignature:
        return None
    return value if isinstance(value, int) else None
