"""Signed links for confirmation, preferences and unsubscribing.

Links carry the subscriber's random `token` (a UUID), never the address, and
are signed with SECRET_KEY under a salt per purpose, so a preferences link
cannot be replayed as a confirmation link. Confirmation and preferences links
expire (settings NEWSLETTER_CONFIRM_MAX_AGE, NEWSLETTER_PREFERENCES_MAX_AGE);
unsubscribe links do not, because mailbox providers and old emails must keep
working. Erasing a subscriber rotates the token, which voids every link.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.urls import reverse

from outlet.newsletters.models import Newsletter, Subscriber

CONFIRM_SALT = "outlet.newsletters.confirm"
PREFERENCES_SALT = "outlet.newsletters.preferences"
UNSUBSCRIBE_SALT = "outlet.newsletters.unsubscribe"


class LinkInvalid(Exception):
    """The link was tampered with, is malformed, or its subscriber is gone."""


class LinkExpired(LinkInvalid):
    """The link was genuine but is too old; offer a new one."""


@dataclass(frozen=True)
class LinkTarget:
    subscriber: Subscriber
    newsletter_id: int | None = None


def _absolute(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def confirm_token(subscriber: Subscriber) -> str:
    return signing.TimestampSigner(salt=CONFIRM_SALT).sign(subscriber.token.hex)


def preferences_token(subscriber: Subscriber) -> str:
    return signing.TimestampSigner(salt=PREFERENCES_SALT).sign(subscriber.token.hex)


def unsubscribe_token(subscriber: Subscriber, newsletter: Newsletter | None = None) -> str:
    value = (
        subscriber.token.hex if newsletter is None else f"{subscriber.token.hex}.{newsletter.pk}"
    )
    return signing.Signer(salt=UNSUBSCRIBE_SALT).sign(value)


def confirm_url(subscriber: Subscriber) -> str:
    return _absolute(reverse("newsletters:confirm", args=[confirm_token(subscriber)]))


def preferences_url(subscriber: Subscriber | None = None) -> str:
    """Where a reader changes their newsletters: the reader account, which signs them in
    by a short-lived emailed link (outlet/readers), the same address for everyone. No
    email carries a preferences token any more; links already sent keep working until
    NEWSLETTER_PREFERENCES_MAX_AGE has passed (`preferences_target`), then this token
    and its view can go."""
    return _absolute(reverse("readers:account"))


def unsubscribe_url(subscriber: Subscriber, newsletter: Newsletter | None = None) -> str:
    """The one-click URL: GET asks for confirmation, POST unsubscribes (RFC 8058)."""
    return _absolute(
        reverse("newsletters:unsubscribe", args=[unsubscribe_token(subscriber, newsletter)])
    )


def unsubscribe_mailto(subscriber: Subscriber, newsletter: Newsletter | None = None) -> str:
    """A mailto: URL whose subject carries the unsubscribe token (see tracking.py)."""
    token = unsubscribe_token(subscriber, newsletter)
    return f"mailto:{settings.NEWSLETTER_UNSUBSCRIBE_MAILTO}?subject=unsubscribe%20{token}"


def list_unsubscribe_headers(
    subscriber: Subscriber, newsletter: Newsletter | None = None
) -> dict[str, str]:
    """Headers every newsletter message carries (RFC 2369 and RFC 8058)."""
    links = [f"<{unsubscribe_url(subscriber, newsletter)}>"]
    if settings.NEWSLETTER_UNSUBSCRIBE_MAILTO:
        links.append(f"<{unsubscribe_mailto(subscriber, newsletter)}>")
    return {
        "List-Unsubscribe": ", ".join(links),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def _subscriber_for(hex_token: str) -> Subscriber:
    try:
        token = uuid.UUID(hex=hex_token)
    except ValueError as exc:
        raise LinkInvalid("malformed token") from exc
    subscriber = Subscriber.objects.filter(token=token).first()
    if subscriber is None:
        raise LinkInvalid("no such subscriber")
    return subscriber


def _unsign(signer: signing.Signer, value: str, max_age: int | None = None) -> str:
    try:
        if isinstance(signer, signing.TimestampSigner):
            return signer.unsign(value, max_age=max_age)
        return signer.unsign(value)
    except signing.SignatureExpired as exc:
        raise LinkExpired("link expired") from exc
    except signing.BadSignature as exc:
        raise LinkInvalid("bad signature") from exc


def confirm_target(value: str) -> LinkTarget:
    signer = signing.TimestampSigner(salt=CONFIRM_SALT)
    return LinkTarget(_subscriber_for(_unsign(signer, value, settings.NEWSLETTER_CONFIRM_MAX_AGE)))


def preferences_target(value: str) -> LinkTarget:
    signer = signing.TimestampSigner(salt=PREFERENCES_SALT)
    hex_token = _unsign(signer, value, settings.NEWSLETTER_PREFERENCES_MAX_AGE)
    return LinkTarget(_subscriber_for(hex_token))


def unsubscribe_target(value: str) -> LinkTarget:
    payload = _unsign(signing.Signer(salt=UNSUBSCRIBE_SALT), value)
    hex_token, _, newsletter_id = payload.partition(".")
    return LinkTarget(
        _subscriber_for(hex_token), int(newsletter_id) if newsletter_id.isdigit() else None
    )
