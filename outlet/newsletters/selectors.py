"""Reads about the audience: who an issue goes to, segments, counts for editors."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.apps import apps
from django.core.cache import cache
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.db.models.functions import Lower
from django.utils import timezone

from outlet.core.language import language_valid
from outlet.newsletters.models import Issue, Newsletter, Segment, Subscriber, Subscription

RECENT_SIGNUP_DAYS = 30
LAPSED_AFTER_DAYS = 365


def donor_payments(*, since: datetime | None = None) -> QuerySet | None:
    """Paid donations (paid since `since`, if given), each with `donor_email` lower-cased.

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
    return paid.annotate(donor_email=Lower("donor__email"))


def subscriber_donor_filter(*, since: datetime | None = None) -> Q:
    """A Q on Subscriber: the address has given (since `since`).

    A correlated EXISTS, which the index on LOWER(donor.email) answers per subscriber:
    a page of the admin's list or a chunk of a send's plan probes only its own rows.
    (`email IN (all donors' addresses)` built a hash of every donor for each chunk.)
    """
    payments = donor_payments(since=since)
    if payments is None:
        return Q(pk__in=[])
    return Q(Exists(payments.filter(donor_email=OuterRef("email"))))


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
    newsletter: Newsletter, segment: str = Segment.ALL, *, after_id: int = 0
) -> QuerySet[Subscriber]:
    """Who an issue of `newsletter` goes to now, ordered by id.

    Active, unsuppressed subscribers with a confirmed, unpaused subscription to
    the newsletter, narrowed by `segment`; for a donors-only newsletter, only those
    who have given (asked here, at send time, so the rule holds however someone got
    on the list: an import, an opt-in at a checkout never paid, a gift refunded since).
    Ordered by primary key so a sender can walk it in chunks (`after_id=last_id`)
    and resume after a crash.

    `after_id` bounds the subscriptions too: PostgreSQL runs the EXISTS as a merge
    join, and without the bound on that side it reads every subscription before the
    chunk's first subscriber, for each chunk (quadratic: 135 s to plan a million).
    """
    today = timezone.localdate()
    subscribed = Subscription.objects.filter(
        subscriber=OuterRef("pk"),
        newsletter=newsletter,
        confirmed_at__isnull=False,
    ).filter(Q(paused_until__isnull=True) | Q(paused_until__lt=today))
    recipients = Subscriber.objects.mailable()
    if after_id:
        subscribed = subscribed.filter(subscriber_id__gt=after_id)
        recipients = recipients.filter(pk__gt=after_id)
    recipients = recipients.filter(Exists(subscribed)).filter(segment_filter(segment))
    if newsletter.visibility == Newsletter.Visibility.DONORS:
        recipients = recipients.filter(subscriber_donor_filter())
    return recipients.order_by("pk")


def issue_recipient_count(*, issue: Issue) -> int:
    """How many readers an issue would go to if it were sent now."""
    return newsletter_recipients(issue.newsletter, issue.segment).count()


def newsletter_choices_public() -> QuerySet[Newsletter]:
    """Newsletters a reader may pick on the public sign-up forms."""
    return Newsletter.objects.filter(is_active=True, visibility=Newsletter.Visibility.PUBLIC)


def newsletters_language_first(
    newsletters: Iterable[Newsletter], *, language: str | None
) -> list[Newsletter]:
    """`newsletters` with those in `language` (a page's) first, each part in its order."""
    language = language_valid(language)
    return sorted(newsletters, key=lambda newsletter: newsletter.language_code != language)


def newsletter_choices_for(*, subscriber: Subscriber) -> QuerySet[Newsletter]:
    """What a subscriber's preferences page offers: the public newsletters, the
    donors-only ones if the address has given, and whatever they already receive."""
    offered = Q(is_active=True, visibility=Newsletter.Visibility.PUBLIC)
    if Subscriber.objects.filter(pk=subscriber.pk).filter(subscriber_donor_filter()).exists():
        offered |= Q(is_active=True, visibility=Newsletter.Visibility.DONORS)
    return Newsletter.objects.filter(offered | Q(subscriptions__subscriber=subscriber)).distinct()


SUBSCRIBER_COUNTS_CACHE_KEY = "newsletters:subscriber-counts"
SUBSCRIBER_COUNTS_AS_OF_KEY = "newsletters:subscriber-counts:as-of"


def newsletter_subscriber_counts() -> QuerySet[Newsletter]:
    """Every newsletter with `active_count` (confirmed, mailable) and `pending_count`.

    Exact while the subscriptions are few. Past ESTIMATE_ABOVE the count reads every
    subscription (about a second at a million), so the figures come from the cache,
    as of the last `newsletter_subscriber_counts_refresh` (beat runs it every
    ADMIN_FIGURES_REFRESH_SECONDS). Either way they are annotated as constants,
    so the admin can still sort by them.
    """
    from django.db.models import Case, IntegerField, Value, When

    from outlet.core.paginators import ESTIMATE_ABOVE, table_row_estimate

    estimate = table_row_estimate(Subscription)
    if estimate is None or estimate <= ESTIMATE_ABOVE:
        counts = newsletter_subscriber_counts_exact()
    else:
        counts = cache.get(SUBSCRIBER_COUNTS_CACHE_KEY)
        if counts is None:
            counts = newsletter_subscriber_counts_refresh()

    def column(position: int) -> Case:
        whens = [When(pk=pk, then=Value(pair[position])) for pk, pair in counts.items()]
        return Case(*whens, default=Value(0), output_field=IntegerField())

    return Newsletter.objects.annotate(active_count=column(0), pending_count=column(1)).order_by(
        "position", "name"
    )


def newsletter_subscriber_counts_refresh() -> dict[int, tuple[int, int]]:
    """Count exactly and keep the figures in the cache: {newsletter id: (active, pending)}."""
    from django.conf import settings

    counts = newsletter_subscriber_counts_exact()
    timeout = settings.ADMIN_FIGURES_REFRESH_SECONDS * 3
    cache.set_many(
        {SUBSCRIBER_COUNTS_CACHE_KEY: counts, SUBSCRIBER_COUNTS_AS_OF_KEY: timezone.now()},
        timeout,
    )
    return counts


def newsletter_subscriber_counts_as_of() -> datetime | None:
    """When the cached subscriber counts were computed; None while they are exact and
    live (small tables). Fills the cache if it is empty, as the counts would."""
    from outlet.core.paginators import ESTIMATE_ABOVE, table_row_estimate

    estimate = table_row_estimate(Subscription)
    if estimate is None or estimate <= ESTIMATE_ABOVE:
        return None
    as_of = cache.get(SUBSCRIBER_COUNTS_AS_OF_KEY)
    if as_of is None:
        newsletter_subscriber_counts_refresh()
        as_of = cache.get(SUBSCRIBER_COUNTS_AS_OF_KEY, timezone.now())
    return as_of


def newsletter_subscriber_counts_exact() -> dict[int, tuple[int, int]]:
    """{newsletter id: (confirmed mailable subscribers, pending)}: two grouped scans of the
    subscriptions, joined (by hash) to the subscribers. Not one aggregate with an `IN`
    in its FILTER: PostgreSQL runs that subplan once per row, quadratic in the list."""
    from django.db.models import Count

    active = (
        Subscription.objects.filter(
            confirmed_at__isnull=False, subscriber__in=Subscriber.objects.mailable()
        )
        .values_list("newsletter")
        .annotate(n=Count("id"))
        .order_by()
    )
    pending = (
        Subscription.objects.filter(confirmed_at__isnull=True)
        .values_list("newsletter")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts = dict.fromkeys(Newsletter.objects.values_list("pk", flat=True), (0, 0))
    for newsletter_id, n in active:
        counts[newsletter_id] = (n, 0)
    for newsletter_id, n in pending:
        counts[newsletter_id] = (counts.get(newsletter_id, (0, 0))[0], n)
    return counts


@dataclass(frozen=True)
class DayActivity:
    day: date
    signups: int
    unsubscribes: int


def subscriber_daily_activity(*, days: int = 30) -> list[DayActivity]:
    """Sign-ups (new subscribers) and unsubscribes per day, oldest first, in local time."""
    from django.db.models import Count
    from django.db.models.functions import TruncDate

    today = timezone.localdate()
    first = today - timedelta(days=days - 1)
    tz = timezone.get_current_timezone()
    start = timezone.make_aware(datetime.combine(first, datetime.min.time()), tz)

    def per_day(field: str) -> dict[date, int]:
        rows = (
            Subscriber.objects.filter(**{f"{field}__gte": start})
            .annotate(day=TruncDate(field, tzinfo=tz))
            .values("day")
            .annotate(n=Count("pk"))
        )
        return {row["day"]: row["n"] for row in rows}

    signups, unsubscribes = per_day("created_at"), per_day("unsubscribed_at")
    return [
        DayActivity(day, signups.get(day, 0), unsubscribes.get(day, 0))
        for day in (first + timedelta(days=n) for n in range(days))
    ]


SUBSCRIBER_CSV_HEADER = [
    "email", "name", "status", "source", "newsletters",
    "created_at", "confirmed_at", "unsubscribed_at",
]  # fmt: skip


def subscriber_csv_rows(*, queryset: QuerySet[Subscriber]) -> Iterator[list[str]]:
    """Header, then one row per subscriber, read in chunks so memory stays flat."""
    yield SUBSCRIBER_CSV_HEADER
    rows = queryset.order_by("pk").prefetch_related("subscriptions__newsletter")
    for subscriber in rows.iterator(chunk_size=2000):
        yield [
            subscriber.email,
            subscriber.name,
            subscriber.status,
            subscriber.source,
            " ".join(s.newsletter.slug for s in subscriber.subscriptions.all()),
            subscriber.created_at.isoformat(),
            subscriber.confirmed_at.isoformat() if subscriber.confirmed_at else "",
            subscriber.unsubscribed_at.isoformat() if subscriber.unsubscribed_at else "",
        ]


def subscriber_data_export(*, subscriber: Subscriber) -> dict[str, Any]:
    """Everything the newsletters app holds about one address, for a subject-access request."""
    from outlet.newsletters.models import ConsentRecord, Suppression

    def when(value) -> str | None:
        return value.isoformat() if value else None

    suppression = Suppression.objects.filter(email_hash=subscriber.email_hash).first()
    return {
        "email": subscriber.email,
        "name": subscriber.name,
        "status": subscriber.status,
        "source": subscriber.source,
        "created_at": when(subscriber.created_at),
        "confirmed_at": when(subscriber.confirmed_at),
        "unsubscribed_at": when(subscriber.unsubscribed_at),
        "soft_bounce_count": subscriber.soft_bounce_count,
        "subscriptions": [
            {
                "newsletter": s.newsletter.name,
                "since": when(s.created_at),
                "confirmed_at": when(s.confirmed_at),
                "paused_until": when(s.paused_until),
            }
            for s in subscriber.subscriptions.select_related("newsletter")
        ],
        "consent_records": [
            {
                "kind": record.kind,
                "at": when(record.created_at),
                "form": record.form,
                "page_url": record.page_url,
                "text_shown": record.text_shown,
                "newsletters": record.newsletters,
                "ip": record.ip,
                "source": record.source,
                "opted_in_at": when(record.opted_in_at),
                "opted_in_ip": record.opted_in_ip,
                "confirmed_at": when(record.confirmed_at),
                "confirmed_ip": record.confirmed_ip,
            }
            for record in ConsentRecord.objects.filter(subscriber=subscriber)
        ],
        "suppressed": (
            {"reason": suppression.reason, "since": when(suppression.created_at)}
            if suppression
            else None
        ),
        "deliveries": _subscriber_deliveries_export(subscriber=subscriber),
    }


def _subscriber_deliveries_export(*, subscriber: Subscriber) -> list[dict[str, Any]]:
    """Each issue addressed to the subscriber (its delivery, whatever its status), with
    their opens and clicks, which are kept per delivery. Three queries, however many
    deliveries; no issue's rendered body is read."""
    from outlet.newsletters.models import Click, Delivery, Open

    def when(value) -> str | None:
        return value.isoformat() if value else None

    opens: dict[int, list[dict[str, Any]]] = {}
    for delivery_id, opened_at, machine in (
        Open.objects.filter(delivery__subscriber=subscriber)
        .order_by("opened_at", "pk")
        .values_list("delivery_id", "opened_at", "machine")
    ):
        opens.setdefault(delivery_id, []).append({"at": when(opened_at), "machine": machine})
    clicks: dict[int, list[dict[str, Any]]] = {}
    for delivery_id, clicked_at, url in (
        Click.objects.filter(delivery__subscriber=subscriber)
        .order_by("clicked_at", "pk")
        .values_list("delivery_id", "clicked_at", "link__url")
    ):
        clicks.setdefault(delivery_id, []).append({"at": when(clicked_at), "url": url})
    deliveries = (
        Delivery.objects.filter(subscriber=subscriber)
        .order_by(F("issue__started_at").asc(nulls_last=True), "pk")
        .values_list(
            "pk", "status", "sent_at", "issue__newsletter__name", "issue__subject",
            "issue__sent_at", "issue__started_at",
        )
    )  # fmt: skip
    return [
        {
            "newsletter": newsletter,
            "subject": subject,
            "issue_sent_at": when(issue_sent_at or issue_started_at),  # as Issue.archived_at
            "status": status,
            "sent_at": when(sent_at),
            "opens": opens.get(pk, []),
            "clicks": clicks.get(pk, []),
        }
        for pk, status, sent_at, newsletter, subject, issue_sent_at, issue_started_at in deliveries
    ]


def subscriber_import_report_rows(*, job) -> Iterator[list]:
    """The per-row report of an import: every data row of the file with its outcome,
    read a stored part at a time beside the refusals (both in line order)."""
    refusals = job.refusals.order_by("line").values_list("line", "outcome", "message")
    refused = iter(refusals.iterator(chunk_size=2000))
    pending = next(refused, None)
    yield ["line", "email", "outcome", "message"]
    for part in job.parts.order_by("first_row").iterator(chunk_size=10):
        for index, (line, email, *_rest) in enumerate(part.rows, start=part.first_row):
            while pending is not None and pending[0] < line:
                pending = next(refused, None)
            if pending is not None and pending[0] == line:
                yield [line, email, pending[1], pending[2]]
            elif index < job.processed_rows:
                yield [line, email, "imported", ""]
            else:
                yield [line, email, "pending", "Not checked yet."]


def subscriber_for_email(*, email: str) -> Subscriber | None:
    """The subscriber row of an address (the readers app's account pages)."""
    from outlet.core.addresses import email_normalise

    return Subscriber.objects.filter(email=email_normalise(email)).first()


def subscriber_newsletters(*, email: str, is_donor: bool) -> list[tuple[Newsletter, str]]:
    """Every newsletter an address may choose on its account page with its state there:
    "subscribed" (confirmed), "pending" (waiting for its opt-in) or "" (not subscribed).
    Donors-only newsletters are offered to donors, and to whoever already has one."""
    subscriber = subscriber_for_email(email=email)
    offered = Q(is_active=True, visibility=Newsletter.Visibility.PUBLIC)
    if is_donor:
        offered |= Q(is_active=True, visibility=Newsletter.Visibility.DONORS)
    states: dict[int, str] = {}
    if subscriber is not None:
        offered |= Q(subscriptions__subscriber=subscriber)
        live = subscriber.status == Subscriber.Status.ACTIVE
        for subscription in subscriber.subscriptions.all():
            confirmed = live and subscription.confirmed_at is not None
            states[subscription.newsletter_id] = "subscribed" if confirmed else "pending"
    newsletters = Newsletter.objects.filter(offered).distinct().order_by("position", "name")
    return [(newsletter, states.get(newsletter.pk, "")) for newsletter in newsletters]
