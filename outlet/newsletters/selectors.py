"""Reads about the audience: who an issue goes to, segments, counts for editors."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from outlet.newsletters.models import Newsletter, Segment, Subscriber, Subscription

RECENT_SIGNUP_DAYS = 30
LAPSED_AFTER_DAYS = 365


def donor_email_hashes(*, since=None, before=None) -> QuerySet | None:
    """Digests of the addresses that gave, optionally only gifts in [since, before).

    The one seam between the audience and the donations app: everything that
    asks "is this subscriber a donor?" goes through here. Returns None while
    the donations app has no paid-donation query to offer.
    """
    try:
        from outlet.donations.selectors import donor_email_hashes as donations_donor_hashes
    except ImportError:
        return None
    return donations_donor_hashes(since=since, before=before)


def subscriber_donor_filter() -> Q:
    """A Q on Subscriber: the address has given at least once."""
    hashes = donor_email_hashes()
    if hashes is None:
        return Q(pk__in=[])
    return Q(email_hash__in=hashes)


def segment_filter(segment: str) -> Q:
    """The extra condition a segment puts on Subscriber rows."""
    now = timezone.now()
    if segment in ("", None, Segment.ALL):
        return Q()
    if segment == Segment.DONORS:
        return subscriber_donor_filter()
    if segment == Segment.NON_DONORS:
        return ~subscriber_donor_filter()
    if segment == Segment.LAPSED_DONORS:
        cutoff = now - timedelta(days=LAPSED_AFTER_DAYS)
        recent = donor_email_hashes(since=cutoff)
        if recent is None:
            return Q(pk__in=[])
        return subscriber_donor_filter() & ~Q(email_hash__in=recent)
    if segment == Segment.RECENT:
        return Q(confirmed_at__gte=now - timedelta(days=RECENT_SIGNUP_DAYS))
    raise ValueError(f"Unknown segment {segment!r}")


def newsletter_recipients(
    newsletter: Newsletter, segment: str = Segment.ALL
) -> QuerySet[Subscriber]:
    """Who an issue of `newsletter` goes to now, ordered by id.

    Active, unsuppressed subscribers with a confirmed, unpaused subscription to
    the newsletter, narrowed by `segment`. Ordered by primary key so a sender
    can walk it in chunks with `pk__gt=last_id` and resume after a crash.
    """
    today = timezone.localdate()
    subscribed = Subscription.objects.filter(
        subscriber=OuterRef("pk"),
        newsletter=newsletter,
        confirmed_at__isnull=False,
    ).filter(Q(paused_until__isnull=True) | Q(paused_until__lt=today))
    return (
        Subscriber.objects.mailable()
        .filter(Exists(subscribed))
        .filter(segment_filter(segment))
        .order_by("pk")
    )


def newsletter_choices_public() -> QuerySet[Newsletter]:
    """Newsletters a reader may pick on the public sign-up forms."""
    return Newsletter.objects.filter(is_active=True, visibility=Newsletter.Visibility.PUBLIC)
