"""
The one token scheme for links mailed to readers: a payload signed with SECRET_KEY under a
salt per purpose, read back with that purpose's maximum age.

- `sign-in` (READER_SIGN_IN_MAX_AGE, minutes): names the reader; single-use.
- `email-change` (READER_EMAIL_CHANGE_MAX_AGE): names the reader and the new address;
  single-use; mailed to the new address, so clicking it proves that mailbox.

Every token also carries the reader's `session_epoch` when it was made, and is refused
(LinkRevoked) once the epoch has moved on: "sign out everywhere" and a confirmed change of
address bump it, so they kill every link still in a mailbox as well as every session (a
change-of-address link asked for from a stolen session dies when the owner signs out
everywhere).

Every token carries a random nonce; a single-use link is spent by inserting its nonce
under a unique constraint (services.py), so a used link is told apart from an expired or
forged one. No secret is stored: a database leak signs nobody in. The salt per purpose
keeps a sign-in link from being replayed as an email change, and the reverse.

(Donor sign-in links and newsletter preferences links were the two schemes this replaces;
RFC 8058 unsubscribe links and newsletter confirmation links keep their own signing in
newsletters/tokens.py, because mailbox providers and old emails must keep using them.)
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core import signing

from .models import Reader

_SALT = "outlet.readers"


class LinkInvalid(Exception):
    """Tampered with, malformed, or for another purpose."""


class LinkExpired(LinkInvalid):
    """Genuine but too old: offer a new one."""


class LinkUsed(LinkInvalid):
    """Genuine and single-use, and already used: say so and offer a new one."""


class LinkRevoked(LinkInvalid):
    """Genuine, but made before the reader signed out everywhere or changed address."""


def _max_age(purpose: str) -> int:
    ages = {
        "sign-in": settings.READER_SIGN_IN_MAX_AGE,
        "email-change": settings.READER_EMAIL_CHANGE_MAX_AGE,
    }
    return ages[purpose]


@dataclass(frozen=True)
class LinkPayload:
    purpose: str
    reader_id: int
    session_epoch: int
    nonce: str
    email: str = ""


def reader_token_make(*, purpose: str, reader: Reader, email: str = "") -> str:
    _max_age(purpose)  # an unknown purpose fails here, not when the link comes back
    payload: dict[str, int | str] = {
        "r": reader.pk,
        "s": reader.session_epoch,
        "n": secrets.token_urlsafe(16),
    }
    if email:
        payload["e"] = email
    return signing.dumps(payload, salt=f"{_SALT}.{purpose}", compress=True)


def reader_token_read(*, purpose: str, token: str) -> LinkPayload:
    try:
        payload = signing.loads(token, salt=f"{_SALT}.{purpose}", max_age=_max_age(purpose))
    except signing.SignatureExpired as exc:
        raise LinkExpired("link expired") from exc
    except signing.BadSignature as exc:
        raise LinkInvalid("bad signature") from exc
    if not isinstance(payload, dict) or not all(isinstance(payload.get(k), int) for k in "rs"):
        raise LinkInvalid("malformed payload")
    return LinkPayload(
        purpose=purpose,
        reader_id=payload["r"],
        session_epoch=payload["s"],
        nonce=str(payload.get("n", "")),
        email=str(payload.get("e", "")),
    )
