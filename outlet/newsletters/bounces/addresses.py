"""Return paths (VERP): `bounces+<signed token>@BOUNCE_DOMAIN`, one per delivery or message.

Contract: with BOUNCE_DOMAIN set (and no email provider, which takes bounces itself),
every newsletter copy goes out with the envelope sender `delivery_return_path(...)` and
every reader-facing transactional message with `message_return_path(...)`; a bounce
coming back to that address names, by the token, what it is about. `token_check` says
whether a token is ours *and* was made for the address the bounce reports: the token
signs the recipient's address with the delivery (or a per-message nonce), so nobody can
take the bounce address they were sent and make it suppress someone else.

A token carries (and signs) the day it was minted and is refused once older than
BOUNCE_TOKEN_MAX_AGE_DAYS: a return path leaked in an old copy cannot be replayed forever.
Tokens minted before the day was part of them are refused too (no rollout grace).

Tokens are lower-case letters, digits and '-' (MTAs fold local parts to lower case and
Postfix splits at '+'), at most 48 characters, so the local part stays under RFC 5321's 64.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.conf import settings
from django.core.mail import EmailMessage
from django.utils.crypto import constant_time_compare

#: The local part before the '+' (Postfix's recipient_delimiter).
LOCAL_PART = "bounces"
_SALT = "outlet.newsletters.bounces.return-path"
_SIGNATURE_LENGTH = 25  # hex digits: 100 bits
_TOKEN = re.compile(
    r"(?P<kind>[dt])(?P<ref>[0-9a-f]{1,16})-(?P<day>[0-9a-f]{1,4})-(?P<signature>[0-9a-f]{25})"
)
#: Days are counted from here (four hex digits last past the year 2200).
_EPOCH = date(2024, 1, 1)
_ADDRESS = re.compile(rf"{LOCAL_PART}\+(?P<token>[0-9a-z-]+)@(?P<domain>[^\s>]+)", re.IGNORECASE)


def return_paths_on() -> bool:
    """VERP only through our own relay: an email provider handles bounces itself."""
    from outlet.newsletters.esp_webhooks import esp_configured

    return (
        bool(settings.BOUNCE_DOMAIN)
        and esp_configured(email_backend=settings.EMAIL_BACKEND) is None
    )


_keyed: tuple[str, bytes] | None = None


def _now() -> datetime:
    return datetime.now(tz=UTC)


def _day() -> str:
    return f"{(_now().date() - _EPOCH).days:x}"


def _signature(kind: str, ref: str, email: str) -> str:
    """Keyed BLAKE2s (a MAC by design, RFC 7693) under a key derived from SECRET_KEY and
    the salt once per key: this runs for every copy sent, and HMAC-SHA256 cost several
    times more per message."""
    global _keyed
    secret = settings.SECRET_KEY
    if _keyed is None or _keyed[0] != secret:
        _keyed = (secret, hashlib.sha256((_SALT + secret).encode()).digest())
    message = f"{kind}:{ref}:{email.strip().lower()}".encode()
    return hashlib.blake2s(message, key=_keyed[1], digest_size=13).hexdigest()[:_SIGNATURE_LENGTH]


def _address(kind: str, ref: str, email: str, domain: str = "") -> str:
    domain = domain or settings.BOUNCE_DOMAIN
    ref = f"{ref}-{_day()}"  # the day is signed with the reference
    return f"{LOCAL_PART}+{kind}{ref}-{_signature(kind, ref, email)}@{domain}"


def delivery_return_path(*, delivery_id: int, email: str, domain: str = "") -> str:
    """The envelope sender for one newsletter copy (callers check `return_paths_on`,
    and may read BOUNCE_DOMAIN, once per batch: this runs per message)."""
    return _address("d", f"{delivery_id:x}", email, domain)


def message_return_path(*, email: str) -> str:
    """The envelope sender for one transactional message to `email` (a fresh nonce
    each time)."""
    return _address("t", f"{secrets.randbits(40):x}", email)


def return_path_apply[M: EmailMessage](message: M) -> M:
    """Give a transactional message to one reader its own return path, when return paths
    are on: Django's SMTP backend uses `from_email` as the envelope sender and a "From"
    header, when there is one, as the From the reader sees."""
    recipients = message.recipients()
    if len(recipients) != 1 or not return_paths_on():
        return message
    message.extra_headers.setdefault("From", message.from_email)
    message.from_email = message_return_path(email=recipients[0])
    return message


@dataclass(frozen=True)
class BounceToken:
    """A token as read from an address; not yet checked against any recipient."""

    kind: str  # "d": a newsletter delivery; "t": a transactional message
    ref: str  # "<delivery or nonce>-<day minted>", both hex
    signature: str

    @property
    def delivery_id(self) -> int | None:
        return int(self.ref.partition("-")[0], 16) if self.kind == "d" else None

    @property
    def expired(self) -> bool:
        """Minted more than BOUNCE_TOKEN_MAX_AGE_DAYS ago (checked with the signature)."""
        minted = int(self.ref.partition("-")[2], 16)
        age = (_now().date() - _EPOCH).days - minted
        return age > settings.BOUNCE_TOKEN_MAX_AGE_DAYS

    def signed_for(self, email: str) -> bool:
        """Whether this token was made by us for a message to `email`."""
        return constant_time_compare(self.signature, _signature(self.kind, self.ref, email))


def token_from_address(address: str) -> BounceToken | None:
    """The token in a `bounces+<token>@BOUNCE_DOMAIN` address, or None (another address,
    another domain, or a token of the wrong shape)."""
    match = _ADDRESS.search(address or "")
    if match is None or match["domain"].lower().rstrip(".") != settings.BOUNCE_DOMAIN.lower():
        return None
    token = _TOKEN.fullmatch(match["token"].lower())
    if token is None:
        return None
    return BounceToken(
        kind=token["kind"], ref=f"{token['ref']}-{token['day']}", signature=token["signature"]
    )


def bounce_address_seen(address: str) -> bool:
    """Whether `address` is one of our bounce addresses at all (a token, good or bad)."""
    match = _ADDRESS.search(address or "")
    return match is not None and match["domain"].lower().rstrip(".") == (
        settings.BOUNCE_DOMAIN.lower()
    )
