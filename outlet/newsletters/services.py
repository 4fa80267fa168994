"""Writes about the audience: sign-up, confirmation, preferences, unsubscribing,
suppression and erasure (subscriber imports live in audience/importing.py).

Every function here is the single way to make its change, whether it comes
from a reader's form, an email link, an ESP webhook, the admin or a task.
Log lines name subscribers by id or by address digest, never by address.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import date, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.functional import Promise

from outlet.core.addresses import email_digest, email_normalise
from outlet.core.ratelimits import rate_limit_client, rate_limit_hit
from outlet.newsletters.models import (
    ConsentRecord,
    DeliveryEvent,
    Newsletter,
    Subscriber,
    Subscription,
    Suppression,
)

#: A message for people, translated when used (the consent text is lazy, in the reader's language).
StrOrPromise = str | Promise

logger = logging.getLogger(__name__)

MAX_EMAIL_LENGTH = 254
MAX_NAME_LENGTH = 120


def email_validate(email: str) -> str:
    """The normalised address, or ValidationError with a message fit for a reader."""
    normalised = email_normalise(email)
    if not normalised:
        raise ValidationError("Enter your email address.")
    if len(normalised) > MAX_EMAIL_LENGTH:
        raise ValidationError("That email address is too long.")
    validate_email(normalised)
    return normalised


def email_is_suppressed(email: str) -> bool:
    return Suppression.objects.filter(email_hash=email_digest(email)).exists()


# --- Rate limits ---------------------------------------------------------------


def signup_attempt_allowed(*, ip: str | None, email: str) -> bool:
    """Count a sign-up (or new-link) attempt against the client IP and the address.

    Both counters are kept whatever the address's state, so being limited
    reveals nothing about whether an address is known.
    """
    window = settings.NEWSLETTER_SIGNUP_RATE_WINDOW
    by_ip = rate_limit_hit(
        f"newsletters:rate:ip:{rate_limit_client(ip)}",
        limit=settings.NEWSLETTER_SIGNUP_RATE_PER_IP,
        window=window,
    )
    by_email = rate_limit_hit(
        f"newsletters:rate:email:{email_digest(email)}",
        limit=settings.NEWSLETTER_SIGNUP_RATE_PER_EMAIL,
        window=window,
    )
    return by_ip and by_email


# --- Sign-up and confirmation ----------------------------------------------------


def _confirmation_queue(subscriber: Subscriber) -> None:
    """Send a confirmation unless one went to this address within the resend interval."""
    now = timezone.now()
    interval = timedelta(seconds=settings.NEWSLETTER_CONFIRM_RESEND_SECONDS)
    if subscriber.confirmation_sent_at and now - subscriber.confirmation_sent_at < interval:
        return
    subscriber.confirmation_sent_at = now
    subscriber.save(update_fields=["confirmation_sent_at"])
    from outlet.newsletters.tasks import subscriber_confirmation_send_task

    subscriber_id, stamp = subscriber.pk, now.isoformat()
    transaction.on_commit(lambda: subscriber_confirmation_send_task.delay(subscriber_id, stamp))


def newsletters_for_donor_opt_in() -> list[Newsletter]:
    """What "keep me informed" on the donation form means: the first public
    newsletter and every active donors-only one."""
    active = Newsletter.objects.filter(is_active=True)
    first_public = active.filter(visibility=Newsletter.Visibility.PUBLIC).first()
    donors_only = list(active.filter(visibility=Newsletter.Visibility.DONORS))
    return ([first_public] if first_public else []) + donors_only


def subscriber_signup(
    *,
    email: str,
    newsletters: Iterable[Newsletter] | None = None,
    source: str = Subscriber.Source.FORM,
    name: str = "",
    form: str = "",
    page_url: str = "",
    consent_text: StrOrPromise = "",
    ip: str | None = None,
    language: str = "",
) -> Subscriber | None:
    """Record a wish to receive `newsletters`; nothing is sent until it is confirmed.

    `language` is the page's the reader signed up on: the language of their emails from
    now on, unless the address was ever confirmed (an active or unsubscribed reader may
    have chosen one in their account, and anyone can type their address here).

    The outcome a reader can observe is the same for a new, pending, active or
    unsubscribed address: at most one confirmation email, which only the
    owner of the mailbox can act on. Suppressed addresses are silently
    ignored. Newsletters already confirmed stay as they are; new choices wait
    for the link. Also the door for the donation form's opt-in
    (`source=Subscriber.Source.DONATION` or "donation:<id>"; without
    `newsletters` it means `newsletters_for_donor_opt_in()`).
    """
    normalised = email_validate(email)
    if source not in Subscriber.Source.values:
        # e.g. "donation:42" from the donations app: keep the detail as the form name.
        form = form or source
        source = (
            Subscriber.Source.DONATION if source.startswith("donation") else Subscriber.Source.FORM
        )
    if newsletters is None and source == Subscriber.Source.DONATION:
        newsletters = newsletters_for_donor_opt_in()
    chosen = list(newsletters or [])
    if not chosen:
        raise ValidationError("Choose at least one newsletter.")
    if email_is_suppressed(normalised):
        logger.info("newsletter sign-up ignored for suppressed %s", email_digest(normalised)[:12])
        return None
    kind = (
        ConsentRecord.Kind.DONATION
        if source == Subscriber.Source.DONATION
        else ConsentRecord.Kind.SIGNUP
    )
    for attempt in range(2):
        try:
            with transaction.atomic():
                subscriber = _signup_in_transaction(
                    normalised, chosen, source, name[:MAX_NAME_LENGTH], kind, form, page_url,
                    consent_text, ip, language,
                )  # fmt: skip
            return subscriber
        except IntegrityError:
            # Two sign-ups for one new address at once: the second finds the first's row.
            if attempt:
                raise
    return None


def _signup_in_transaction(
    email, newsletters, source, name, kind, form, page_url, consent_text, ip, language
) -> Subscriber:
    subscriber, _ = Subscriber.objects.select_for_update().get_or_create(
        email=email, defaults={"source": source, "name": name, "language": language}
    )
    if subscriber.status != Subscriber.Status.ACTIVE:
        subscriber.status = Subscriber.Status.PENDING
        if name and not subscriber.name:
            subscriber.name = name
        if language and subscriber.confirmed_at is None:
            subscriber.language = language
        subscriber.save(update_fields=["status", "name", "language"])
    existing = set(
        Subscription.objects.filter(subscriber=subscriber).values_list("newsletter_id", flat=True)
    )
    Subscription.objects.bulk_create(
        [
            Subscription(subscriber=subscriber, newsletter=n)
            for n in newsletters
            if n.pk not in existing
        ]
    )
    ConsentRecord.objects.create(
        subscriber=subscriber,
        kind=kind,
        form=form[:80],
        page_url=page_url[:500],
        text_shown=str(consent_text),  # the words shown, in the language they were shown in
        newsletters=", ".join(n.name for n in newsletters)[:500],
        ip=ip,
    )
    needs_confirmation = (
        subscriber.status == Subscriber.Status.PENDING
        or subscriber.subscriptions.filter(confirmed_at__isnull=True).exists()
    )
    if needs_confirmation:
        _confirmation_queue(subscriber)
    logger.info("newsletter sign-up for subscriber %s", subscriber.pk)
    return subscriber


def _subscriber_activate(subscriber: Subscriber, now) -> None:
    """The address proved its mailbox: active from now, its run of soft bounces forgotten."""
    subscriber.status = Subscriber.Status.ACTIVE
    subscriber.confirmed_at = subscriber.confirmed_at or now
    subscriber.unsubscribed_at = None
    subscriber.soft_bounce_count = 0
    subscriber.save(
        update_fields=["status", "confirmed_at", "unsubscribed_at", "soft_bounce_count"]
    )


def subscriber_confirm(*, subscriber: Subscriber, ip: str | None = None) -> bool:
    """Activate a subscriber and their pending choices; False if there was nothing to confirm.

    A link followed after unsubscribing confirms nothing: unsubscribing
    removed the choices it was for.
    """
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
        if email_is_suppressed(subscriber.email):
            return False
        pending = subscriber.subscriptions.filter(confirmed_at__isnull=True)
        if subscriber.status not in (Subscriber.Status.PENDING, Subscriber.Status.ACTIVE):
            return False
        if subscriber.status == Subscriber.Status.ACTIVE and not pending.exists():
            return False
        now = timezone.now()
        names = ", ".join(pending.values_list("newsletter__name", flat=True))
        pending.update(confirmed_at=now)
        _subscriber_activate(subscriber, now)
        ConsentRecord.objects.create(
            subscriber=subscriber, kind=ConsentRecord.Kind.CONFIRM, newsletters=names[:500], ip=ip
        )
    logger.info("newsletter subscriber %s confirmed", subscriber.pk)
    return True


def subscriber_link_request(*, email: str) -> None:
    """Mail a fresh link to a known address: confirmation if pending, else preferences.

    Same outcome on screen for unknown addresses (nothing is sent to them).
    """
    normalised = email_validate(email)
    subscriber = Subscriber.objects.filter(email=normalised).first()
    if subscriber is None or email_is_suppressed(normalised):
        return
    if subscriber.status == Subscriber.Status.PENDING:
        with transaction.atomic():
            _confirmation_queue(subscriber)
        return
    if subscriber.status not in (Subscriber.Status.ACTIVE, Subscriber.Status.UNSUBSCRIBED):
        return
    from outlet.newsletters.tasks import subscriber_preferences_link_send_task

    subscriber_id = subscriber.pk
    transaction.on_commit(lambda: subscriber_preferences_link_send_task.delay(subscriber_id))


# --- Preferences and unsubscribing --------------------------------------------------


def subscriber_preferences_update(
    *,
    subscriber: Subscriber,
    newsletters: Iterable[Newsletter],
    paused_until: date | None = None,
    ip: str | None = None,
) -> None:
    """Keep exactly `newsletters`, paused until `paused_until` (None: not paused).

    The link keeps, removes or pauses an active subscriber's confirmed newsletters;
    a chosen newsletter not confirmed yet waits for its own opt-in (one confirmation
    email through `subscriber_signup`): the link is forwarded with every issue, so it
    must not add anybody to anything. Choosing nothing unsubscribes from everything.
    An address that unsubscribed, bounced or complained is not re-subscribed by the
    link (it works for a year and travels with every forwarded issue): its choices
    start a fresh double opt-in to the address (`subscriber_signup`), and a
    suppressed address stays suppressed.
    """
    chosen = {n.pk: n for n in newsletters}
    if not chosen:
        subscriber_unsubscribe(subscriber=subscriber)
        return
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
        if email_is_suppressed(subscriber.email):
            return
        if subscriber.status != Subscriber.Status.ACTIVE:
            subscriber_signup(
                email=subscriber.email,
                newsletters=list(chosen.values()),
                source=Subscriber.Source.FORM,
                form="preferences",
                ip=ip,
            )
            return
        dropped = subscriber.subscriptions.exclude(newsletter_id__in=chosen)
        left = list(
            Newsletter.objects.filter(
                pk__in=dropped.filter(confirmed_at__isnull=False).values("newsletter_id")
            )
        )
        dropped.delete()
        for newsletter in left:  # each newsletter left counts for the issue it followed
            _unsubscribe_attribute(subscriber=subscriber, newsletter=newsletter)
        confirmed = set(
            subscriber.subscriptions.filter(confirmed_at__isnull=False).values_list(
                "newsletter_id", flat=True
            )
        )
        subscriber.subscriptions.filter(confirmed_at__isnull=False).update(
            paused_until=paused_until
        )
        unconfirmed = [n for pk, n in chosen.items() if pk not in confirmed]
        if unconfirmed:
            subscriber_signup(
                email=subscriber.email,
                newsletters=unconfirmed,
                source=Subscriber.Source.FORM,
                form="preferences",
                ip=ip,
            )
        ConsentRecord.objects.create(
            subscriber=subscriber,
            kind=ConsentRecord.Kind.PREFERENCES,
            newsletters=", ".join(n.name for n in chosen.values())[:500],
            ip=ip,
        )
    logger.info("newsletter subscriber %s updated preferences", subscriber.pk)


def subscriber_unsubscribe(*, subscriber: Subscriber, newsletter: Newsletter | None = None) -> None:
    """Stop `newsletter` (or everything) at once. Safe to repeat.

    Leaving the last newsletter makes the subscriber unsubscribed, so a later
    sign-up starts a fresh double opt-in.
    """
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
        subscriptions = subscriber.subscriptions.all()
        if newsletter is not None:
            subscriptions.filter(newsletter=newsletter).delete()
            if subscriber.subscriptions.filter(confirmed_at__isnull=False).exists():
                _unsubscribe_attribute(subscriber=subscriber, newsletter=newsletter)
                return
        subscriptions.delete()
        if subscriber.status in (Subscriber.Status.ACTIVE, Subscriber.Status.PENDING):
            subscriber.status = Subscriber.Status.UNSUBSCRIBED
            subscriber.unsubscribed_at = timezone.now()
            subscriber.save(update_fields=["status", "unsubscribed_at"])
    _unsubscribe_attribute(subscriber=subscriber, newsletter=newsletter)
    logger.info("newsletter subscriber %s unsubscribed", subscriber.pk)


def subscriber_subscribe_signed_in(
    *, email: str, newsletter: Newsletter, consent_text: StrOrPromise, ip: str | None = None
) -> bool:
    """A reader signed in by a link mailed to `email` chooses `newsletter` on their
    account page: having just proved the mailbox, the click is the double opt-in, so the
    subscription is confirmed at once and both steps are recorded as consent. A
    suppressed address stays suppressed (False)."""
    normalised = email_validate(email)
    if email_is_suppressed(normalised):
        return False
    now = timezone.now()
    with transaction.atomic():
        subscriber, _ = Subscriber.objects.select_for_update().get_or_create(
            email=normalised, defaults={"source": Subscriber.Source.FORM}
        )
        subscription, _ = Subscription.objects.get_or_create(
            subscriber=subscriber, newsletter=newsletter
        )
        if subscription.confirmed_at is None:
            subscription.confirmed_at = now
            subscription.save(update_fields=["confirmed_at"])
        if subscriber.status != Subscriber.Status.ACTIVE:
            # Other choices still waiting for their own link stay waiting.
            _subscriber_activate(subscriber, now)
        for kind in (ConsentRecord.Kind.SIGNUP, ConsentRecord.Kind.CONFIRM):
            ConsentRecord.objects.create(
                subscriber=subscriber,
                kind=kind,
                form="account",
                text_shown=str(consent_text) if kind == ConsentRecord.Kind.SIGNUP else "",
                newsletters=newsletter.name[:500],
                ip=ip,
            )
    logger.info("newsletter subscriber %s subscribed from the account page", subscriber.pk)
    return True


def subscriber_email_change(*, subscriber: Subscriber, email: str) -> None:
    """The address becomes `email` (the readers app confirmed it with a link sent there);
    its digest follows in save(). The token rotates, as on erasure: confirmation,
    preferences and one-click unsubscribe links left in the old mailbox stop acting on
    the newsletters that now go to the new address."""
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
        subscriber.email = email_validate(email)
        subscriber.token = uuid.uuid4()
        subscriber.save()


def _unsubscribe_attribute(*, subscriber: Subscriber, newsletter: Newsletter | None) -> None:
    """Count the unsubscribe for the issue it followed (once per delivery)."""
    from outlet.newsletters.measuring.recording import delivery_event_record, delivery_followed

    delivery = delivery_followed(
        subscriber_id=subscriber.pk, newsletter_id=newsletter.pk if newsletter else None
    )
    delivery_event_record(delivery=delivery, kind=DeliveryEvent.Kind.UNSUBSCRIBE)


# --- Bounces, complaints, suppression ----------------------------------------------

_STATUS_FOR_REASON: dict[str, str] = {
    Suppression.Reason.HARD_BOUNCE: Subscriber.Status.BOUNCED,
    Suppression.Reason.SOFT_BOUNCES: Subscriber.Status.BOUNCED,
    Suppression.Reason.COMPLAINT: Subscriber.Status.COMPLAINED,
    Suppression.Reason.MANUAL: Subscriber.Status.UNSUBSCRIBED,
    Suppression.Reason.ERASED: Subscriber.Status.UNSUBSCRIBED,
    Suppression.Reason.UNSUBSCRIBED: Subscriber.Status.UNSUBSCRIBED,
    Suppression.Reason.CLEANED: Subscriber.Status.BOUNCED,
    Suppression.Reason.EMAIL_DISABLED: Subscriber.Status.UNSUBSCRIBED,
}


def email_suppress(*, email: str, reason: str, detail: str = "") -> Suppression:
    """Put an address on the suppression list for every newsletter. Safe to repeat.

    The door for hard bounces, complaints and permanent SMTP failures seen by
    the sender. The first reason recorded is kept.
    """
    return email_hash_suppress(email_hash=email_digest(email), reason=reason, detail=detail)


def email_hash_suppress(*, email_hash: str, reason: str, detail: str = "") -> Suppression:
    """`email_suppress` by the address's digest: for an address known only by the digest
    it had then (a held bounce whose reader has moved to another address since)."""
    digest = email_hash
    with transaction.atomic():
        suppression, _ = Suppression.objects.get_or_create(
            email_hash=digest, defaults={"reason": reason, "detail": detail[:300]}
        )
        Subscriber.objects.filter(email_hash=digest).exclude(
            status=_STATUS_FOR_REASON[suppression.reason]
        ).update(status=_STATUS_FOR_REASON[suppression.reason])
    logger.info("newsletter address %s suppressed (%s)", digest[:12], reason)
    return suppression


def subscriber_soft_bounce_record(*, email: str, detail: str = "") -> None:
    """Count one soft bounce; after NEWSLETTER_SOFT_BOUNCE_LIMIT in a row, suppress."""
    with transaction.atomic():
        subscriber = (
            Subscriber.objects.select_for_update().filter(email_hash=email_digest(email)).first()
        )
        if subscriber is None:
            return
        subscriber.soft_bounce_count += 1
        subscriber.save(update_fields=["soft_bounce_count"])
        if subscriber.soft_bounce_count >= settings.NEWSLETTER_SOFT_BOUNCE_LIMIT:
            email_suppress(email=email, reason=Suppression.Reason.SOFT_BOUNCES, detail=detail)


def subscriber_delivery_record(*, email: str) -> None:
    """A message was delivered: the run of soft bounces is broken."""
    Subscriber.objects.filter(email_hash=email_digest(email), soft_bounce_count__gt=0).update(
        soft_bounce_count=0
    )


def subscriber_erase(*, subscriber: Subscriber) -> str:
    """Delete everything held about an address, keeping only its digest as a suppression.

    Returns the digest. Consent records and choices go with the subscriber;
    the suppression stops any later import or sign-up from adding it back.
    """
    from outlet.newsletters.measuring.erased import issue_stats_keep_erased

    digest = subscriber.email_hash
    with transaction.atomic():
        issue_stats_keep_erased(subscriber_id=subscriber.pk)  # the issues' figures stay
        Suppression.objects.update_or_create(
            email_hash=digest,
            defaults={"reason": Suppression.Reason.ERASED, "detail": ""},
        )
        Subscriber.objects.filter(pk=subscriber.pk).delete()
    logger.info("newsletter address %s erased", digest[:12])
    return digest


def suppression_detail_erase(*, email: str) -> None:
    """Clear what a suppression says about why (a bounce's text often quotes the address),
    keeping the suppression: for an erased address with no subscriber row."""
    Suppression.objects.filter(email_hash=email_digest(email)).exclude(detail="").update(detail="")


# --- The newsletters themselves ---------------------------------------------------


@transaction.atomic
def newsletter_save(*, newsletter: Newsletter) -> Newsletter:
    """Save a newsletter; reader pages show the sign-up box's list, so they change on commit."""
    from outlet.articles.services import content_changed

    newsletter.save()
    content_changed()
    return newsletter


@transaction.atomic
def newsletter_delete(*, newsletter: Newsletter) -> None:
    from outlet.articles.services import content_changed

    newsletter.delete()
    content_changed()
