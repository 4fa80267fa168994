"""
Writes for readers: asking for and using a sign-in link, signing out everywhere, changing
the address, and erasing what is held about it.

- `reader_sign_in_request` answers the same, doing the same work, for known addresses and
  strangers: it counts the request against the IP and the address and queues one task
  after commit; the task alone looks the address up and mails a link only to an address
  that gave or confirmed a subscription (selectors.reader_address_known). A request over
  an allowance is dropped silently.
- A link is spent by inserting its nonce (tokens.py) under a unique constraint: two clicks
  at once sign in once, and a used link is told apart from an expired one. A link made
  under an older session epoch (before "sign out everywhere" or a change of address) is
  refused.
- A change of address is told to the old address twice (asked for, done), with how to stop
  it and reach staff; confirming it moves the records, rotates the subscriber's token and
  bumps the epoch, and starts no session: the reader signs in at the new address as usual.
- Gifts and newsletters are changed only through their apps' services.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from outlet.core.addresses import email_digest, email_normalise
from outlet.core.language import site_languages
from outlet.core.ratelimits import rate_limit_client, rate_limit_count, rate_limit_hit
from outlet.core.services import admin_log_anonymise
from outlet.donations import selectors as donation_selectors
from outlet.donations import services as donation_services
from outlet.donations.models import Donor
from outlet.newsletters import selectors as newsletter_selectors
from outlet.newsletters import services as newsletter_services
from outlet.newsletters.models import Subscriber, Suppression

from .models import Reader, ReaderLinkUse
from .selectors import reader_address_in_use, reader_address_known
from .tokens import LinkInvalid, LinkRevoked, LinkUsed, reader_token_make, reader_token_read

logger = logging.getLogger(__name__)


def _within_allowance(*, kind: str, email: str, ip: str) -> bool:
    """Hourly counts, an IPv6 client counted by its /64 (core.ratelimits). The IP first, so
    one busy IP spends nothing of an address's allowance; then the address from this IP
    (READER_LINKS_PER_HOUR); then the address from everywhere
    (READER_LINKS_PER_ADDRESS_PER_HOUR), a cap against mail-bombing from many IPs. The
    first request for the address from an IP in the hour passes that cap, so requests from
    elsewhere cannot lock the reader out, but never the hard ceiling
    (READER_LINKS_PER_ADDRESS_CEILING): a flood from ever new IPs stops there."""
    digest = email_digest(email)
    client = rate_limit_client(ip)
    ip_limit = settings.READER_LINKS_PER_IP_PER_HOUR
    if not rate_limit_hit(f"readers:{kind}:ip:{client}", limit=ip_limit, window=3600):
        return False
    from_here = rate_limit_count(f"readers:{kind}:email-ip:{digest}:{client}", window=3600)
    if from_here > settings.READER_LINKS_PER_HOUR:
        return False
    everywhere = rate_limit_count(f"readers:{kind}:email:{digest}", window=3600)
    if everywhere > settings.READER_LINKS_PER_ADDRESS_CEILING:
        return False
    return from_here == 1 or everywhere <= settings.READER_LINKS_PER_ADDRESS_PER_HOUR


def reader_sign_in_request(*, email: str, ip: str) -> None:
    """Queue a sign-in link for this address if it is within its hourly allowance. Same
    work and same answer whether or not the address is known."""
    from .tasks import reader_sign_in_send_task

    address = email_normalise(email)
    if not _within_allowance(kind="sign-in", email=address, ip=ip):
        logger.info("Reader sign-in request over its hourly allowance; dropped")
        return
    request_id = secrets.token_hex(16)  # makes a repeated task owe the email once
    transaction.on_commit(lambda: reader_sign_in_send_task.delay(address, request_id), robust=True)


def reader_for_known_address(*, email: str) -> Reader | None:
    """The reader row of an address that gave or confirmed a subscription (made on first
    use), or None for any other address (selectors.reader_address_known)."""
    address = email_normalise(email)
    if not reader_address_known(email=address):
        return None
    try:
        reader, _ = Reader.objects.get_or_create(email=address)
    except IntegrityError:  # two requests for a new reader at once
        reader = Reader.objects.get(email=address)
    return reader


def reader_sign_in_send(*, email: str, request_id: str) -> bool:
    """The task's work: mail a sign-in link if the address is known, once per request
    however often the task runs (the request is claimed in the cache; a failed send gives
    the claim back for the retry). True if sent now."""
    from .emails import sign_in_email

    reader = reader_for_known_address(email=email)
    if reader is None:
        return False
    claim = f"readers:sign-in-mailed:{request_id}"
    if not cache.add(claim, 1, settings.READER_SIGN_IN_MAX_AGE):
        return False
    token = reader_token_make(purpose="sign-in", reader=reader)
    try:
        sign_in_email(reader=reader, token=token).send()
    except Exception:
        cache.delete(claim)
        raise
    return True


def _spend(*, purpose: str, token: str, lock: bool = False) -> tuple[Reader, str]:
    """Spend a link: its reader (row locked if `lock`, inside the caller's transaction) and
    the address it carries. Raises LinkExpired, LinkRevoked, LinkUsed or LinkInvalid."""
    payload = reader_token_read(purpose=purpose, token=token)
    readers = Reader.objects.select_for_update() if lock else Reader.objects.all()
    reader = readers.filter(pk=payload.reader_id).first()
    if reader is None or not payload.nonce:
        raise LinkInvalid("no such reader")
    if payload.session_epoch != reader.session_epoch:
        raise LinkRevoked("made before the reader signed out everywhere or moved")
    try:
        with transaction.atomic():
            ReaderLinkUse.objects.create(nonce=payload.nonce, purpose=purpose)
    except IntegrityError as exc:
        raise LinkUsed("link already used") from exc
    return reader, payload.email


def reader_sign_in_use(*, token: str) -> Reader:
    """The reader a fresh, unused sign-in link belongs to, spending the link. Raises
    LinkExpired, LinkUsed or LinkInvalid (tokens.py)."""
    reader, _ = _spend(purpose="sign-in", token=token)
    Reader.objects.filter(pk=reader.pk).update(signed_in_at=timezone.now())
    return reader


def reader_sign_out_everywhere(*, reader: Reader) -> None:
    """End every session of this reader, on every device, and void every link of theirs
    not yet used (sign-in and change of address: tokens.py)."""
    Reader.objects.filter(pk=reader.pk).update(session_epoch=F("session_epoch") + 1)


def reader_email_change_request(*, reader: Reader, email: str, ip: str) -> None:
    """Mail a confirmation link to the new address, and a note to the current one (how to
    stop it: sign out everywhere, which voids the link; how to reach staff). The answer is
    the same whether or not the new address is in use; the check happens when the link is
    used."""
    from .tasks import reader_email_change_notice_task, reader_email_change_send_task

    address = newsletter_services.email_validate(email)
    if address == reader.email:
        raise ValidationError(gettext("That is already your address."))
    if not _within_allowance(kind="email-change", email=address, ip=ip):
        return
    # The link is bound to the epoch of this request, not of the moment the task runs: a
    # task delayed or retried past "Sign out everywhere" must not sign a fresh link.
    reader_id, old, epoch = reader.pk, reader.email, reader.session_epoch
    transaction.on_commit(
        lambda: reader_email_change_send_task.delay(reader_id, address, epoch), robust=True
    )
    notice_id = secrets.token_hex(16)
    transaction.on_commit(
        lambda: reader_email_change_notice_task.delay(old, address, False, notice_id), robust=True
    )


def reader_email_change_send(*, reader_id: int, email: str, session_epoch: int | None) -> bool:
    """Mail the new address its confirmation link, signed with the epoch the reader had when
    asking (`session_epoch`); nothing is sent if the epoch has moved since (the owner signed
    out everywhere, or the address changed) or is unknown (a task queued before links were
    bound to their request). True if sent."""
    from .emails import email_change_email

    reader = Reader.objects.filter(pk=reader_id).first()
    if reader is None or session_epoch is None or reader.session_epoch != session_epoch:
        logger.info("Change-of-address link for reader %s not sent: revoked", reader_id)
        return False
    token = reader_token_make(purpose="email-change", reader=reader, email=email)
    email_change_email(reader=reader, email=email, token=token).send()
    return True


def reader_email_change_notice_send(
    *, old_email: str, new_email: str, done: bool, notice_id: str
) -> bool:
    """Tell the old address that a move to `new_email` was asked for (done=False) or has
    happened (done=True); once per `notice_id` however often the task runs (claimed in
    the cache like a sign-in request; a failed send gives the claim back). True if sent."""
    from .emails import email_change_notice_email

    claim = f"readers:email-change-notice:{notice_id}"
    if not cache.add(claim, 1, settings.READER_EMAIL_CHANGE_MAX_AGE):
        return False
    try:
        email_change_notice_email(old_email=old_email, new_email=new_email, done=done).send()
    except Exception:
        cache.delete(claim)
        raise
    return True


_ADDRESS_TAKEN = gettext_noop("That address already has an account here. Sign in with it instead.")


def reader_email_change_confirm(*, token: str) -> Reader:
    """Move the reader, their donor and their subscriber records to the address the link
    was mailed to, in one transaction with the reader row locked. Refused (ValidationError)
    when that address already has records, found by the check or by a unique constraint
    when records arrive meanwhile: the reader signs in with it instead, and nothing is
    merged behind anyone's back. The session epoch moves on: every session and every
    unused link of the old address ends, and no session is started here (the reader signs
    in at the new address, which proves it again)."""
    from .tasks import reader_email_change_notice_task

    payload = reader_token_read(purpose="email-change", token=token)
    new = email_normalise(payload.email)
    if not new:
        raise LinkInvalid("no address")
    try:
        with transaction.atomic():
            reader, _ = _spend(purpose="email-change", token=token, lock=True)
            old = reader.email
            if reader_address_in_use(email=new) or Reader.objects.filter(email=new).exists():
                raise ValidationError(gettext(_ADDRESS_TAKEN))
            donor = donation_selectors.donor_for_email(email=old)
            subscriber = newsletter_selectors.subscriber_for_email(email=old)
            if donor is not None:
                donation_services.donor_email_change(donor=donor, email=new)
            if subscriber is not None:
                newsletter_services.subscriber_email_change(subscriber=subscriber, email=new)
            Reader.objects.filter(pk=reader.pk).update(
                email=new, session_epoch=F("session_epoch") + 1
            )
            notice_id = secrets.token_hex(16)
            transaction.on_commit(
                lambda: reader_email_change_notice_task.delay(old, new, True, notice_id),
                robust=True,
            )
    except IntegrityError as exc:
        raise ValidationError(gettext(_ADDRESS_TAKEN)) from exc
    reader.refresh_from_db()
    logger.info("Reader %s changed address", reader.pk)
    return reader


def reader_erase(*, reader: Reader) -> None:
    """Delete what is held about the reader's address (`address_erase`)."""
    address_erase(email=reader.email)


def address_erase(*, email: str) -> None:
    """Delete what is held about an address, for the reader's own Delete and for staff's
    "Erase": newsletter data erased (its digest kept as a suppression, so no import adds
    it back), the address cut out of stored subscriber imports, donation records
    anonymised and kept only as receipts require (donations.services.donor_erase), the
    reader row removed, which ends every session, and the admin history of these rows
    left naming them by id only.

    Two steps, so the erasure finishes or changes nothing and Stripe never disagrees with
    our records: the donor's running gifts are cancelled first (donor_gifts_stop: Stripe,
    then each gift's record; a refusal stops here), then everything else in one
    transaction that depends on no address anyone can submit."""
    from outlet.newsletters.audience.retention import subscriber_imports_address_erase

    address = email_normalise(email)
    donor = donation_selectors.donor_for_email(email=address)
    if donor is not None:
        donation_services.donor_gifts_stop(donor=donor)  # Stripe first: outside the transaction
    with transaction.atomic():
        reader = Reader.objects.select_for_update().filter(email=address).first()
        donor = donation_selectors.donor_for_email(email=address)
        subscriber = newsletter_selectors.subscriber_for_email(email=address)
        # The admin's history names a reader or a donor by address (their str()).
        logged_ids = [(type(row), row.pk) for row in (reader, donor, subscriber) if row is not None]
        if donor is not None:
            donation_services.donor_erase(donor=donor)
        if subscriber is not None:
            newsletter_services.subscriber_erase(subscriber=subscriber)
        else:
            newsletter_services.suppression_detail_erase(email=address)
        if subscriber_imports_address_erase(email=address) and subscriber is None:
            # Only in an import's file: kept out of the next upload of it, as a subscriber's
            # erasure is (and out of a run already holding the row, which checks this).
            newsletter_services.email_suppress(email=address, reason=Suppression.Reason.ERASED)
        if reader is not None:
            Reader.objects.filter(pk=reader.pk).delete()
        for model, object_id in logged_ids:
            admin_log_anonymise(model=model, object_ids=[object_id])
    logger.info("Address %s erased", email_digest(address)[:12])


def reader_newsletter_change(
    *, reader: Reader, action: str, newsletter_id: int | None, ip: str | None
) -> str | None:
    """One click on the account page: "subscribe" or "unsubscribe" one newsletter offered
    to this address, or "unsubscribe-all". Returns what happened (a key the page
    explains), or None when the newsletter is not one this address may choose."""
    from outlet.newsletters.forms import CONSENT_TEXT

    if action == "unsubscribe-all":
        subscriber = newsletter_selectors.subscriber_for_email(email=reader.email)
        if subscriber is not None:
            newsletter_services.subscriber_unsubscribe(subscriber=subscriber)
        return "unsubscribed-all"
    is_donor = donation_selectors.donor_has_given(email=reader.email)
    offered = {
        newsletter.pk: newsletter
        for newsletter, _ in newsletter_selectors.subscriber_newsletters(
            email=reader.email, is_donor=is_donor
        )
    }
    newsletter = offered.get(newsletter_id) if newsletter_id is not None else None
    if newsletter is None:
        return None
    if action == "subscribe":
        subscribed = newsletter_services.subscriber_subscribe_signed_in(
            email=reader.email, newsletter=newsletter, consent_text=CONSENT_TEXT, ip=ip
        )
        return "subscribed" if subscribed else "suppressed"
    if action == "unsubscribe":
        subscriber = newsletter_selectors.subscriber_for_email(email=reader.email)
        if subscriber is not None:
            newsletter_services.subscriber_unsubscribe(subscriber=subscriber, newsletter=newsletter)
        return "unsubscribed"
    return None


def reader_language_set(*, reader: Reader, language: str) -> None:
    """The language of every email to the reader's address from now on: kept on their
    subscriber and donor records (a reader has no language of its own)."""
    if language not in site_languages():
        raise ValidationError(gettext("Choose one of the site's languages."))
    with transaction.atomic():
        Subscriber.objects.filter(email=email_normalise(reader.email)).update(language=language)
        Donor.objects.filter(email=email_normalise(reader.email)).update(language=language)


def reader_sign_in_link_send_for_staff(*, reader: Reader) -> None:
    """Staff send a reader a sign-in link (the reader's admin page). It goes, as always,
    only to the reader's own address, and only if the outlet holds records for it."""
    from .tasks import reader_sign_in_send_task

    address, request_id = reader.email, secrets.token_hex(16)
    transaction.on_commit(lambda: reader_sign_in_send_task.delay(address, request_id), robust=True)


def reader_link_uses_prune() -> int:
    """Forget the nonces of used links older than any link can live: their tokens are
    refused as expired anyway. Returns how many were deleted."""
    longest = max(settings.READER_SIGN_IN_MAX_AGE, settings.READER_EMAIL_CHANGE_MAX_AGE)
    cutoff = timezone.now() - timedelta(seconds=longest + 60)
    deleted, _ = ReaderLinkUse.objects.filter(used_at__lt=cutoff).delete()
    return deleted
