"""Signed, expiring tokens: the one that names the donation a checkout browser pays for.
(Donors sign in to manage gifts with single-use links: services/sign_in.py.)"""

from __future__ import annotations

from django.core import signing

_SALT = "outlet.donations.manage"


def checkout_token_make(*, donation_id: int) -> str:
    """Names the donation a browser is paying for, so it cannot act on another one."""
    return signing.dumps(donation_id, salt=f"{_SALT}.checkout")


def checkout_token_read(*, token: str) -> int | None:
    try:
        value = signing.loads(token, salt=f"{_SALT}.checkout", max_age=24 * 3600)
    except signing.BadSignature:
        return None
    return value if isinstance(value, int) else None
