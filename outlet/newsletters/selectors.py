"""Reads about the audience: who an issue goes to, segments, counts for editors."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.apps import apps
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Lower
from django.utils import timezone

from outlet.newsletters.models import Newsletter, Segment, Subscriber, Subscription

RECENT_SIGNUP_DAYS = 30
LAPSED_AFTER_DAYS = 365


def donor_emails(*, since: datetime | None = None) -> QuerySet | None:
    """Lower-cased addresses of donors with a paid donation (paid since `since`, if given).

    The one seam between the audience and the donations app: every "is this
    subscriber a donor?" goes through here. None if the donations app has no
    Donation model (the segments then match nobody).
    """
    try:
        donation_model = apps.get_model("donations", "Donation")
    except LookupError:
        return None
    paid = donation_model.objects.filter(status="paid")
    if since is not None:
        paid = paid.filter(paid_at__gte=since)
    return paid.annotate(donor_email=Lower("donor__email")).values("donor_email")


def subscriber_donor_filter(*, since: datetime | None = None) -> Q:
    """A Q on Subscriber: the address has given (since `since`)."""
    emails = donor_emails(since=since)
    if emails is None:
        return Q(pk__in=[])
    return Q(email__in=emails)


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
        return subscriber_donor_filter() & ~subscriber_donor_filter(since=cutoff)
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
