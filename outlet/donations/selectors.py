"""Reads for donations: campaign progress, editors' totals, the monthly chart, history."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Exists, F, Max, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, Greatest, TruncMonth
from django.utils import timezone

from .currencies import amount_csv
from .models import Campaign, Donation, Donor, Frequency, Gift, StripeEvent
from .outcome import donation_outcome, donation_retry_url  # noqa: F401 (part of selectors)

PAID = Q(status=Donation.Status.PAID)
# A checkout that never reached Stripe's charge step: pending, no card read, no payment or
# invoice at Stripe. Not a donation (services/abandoned.py expires it).
CHECKOUT_UNFINISHED = Q(
    status=Donation.Status.PENDING,
    card_last4="",
    stripe_payment_intent_id__isnull=True,
    stripe_invoice_id__isnull=True,
)


def donation_status_shown(donation: Donation) -> str:
    """The status a donor is shown: an unfinished checkout is abandoned, not pending."""
    unfinished = (
        donation.status == Donation.Status.PENDING
        and not donation.card_last4
        and not donation.stripe_payment_intent_id
        and not donation.stripe_invoice_id
    )
    return Donation.Status.ABANDONED if unfinished else donation.status


def gift_status_shown(gift: Gift) -> str:
    """A recurring gift whose subscription was never made is an abandoned checkout."""
    if gift.status == Gift.Status.INCOMPLETE and not gift.stripe_subscription_id:
        return Donation.Status.ABANDONED
    return gift.status


# What a paid donation still brings in: its amount less what was refunded and what a
# dispute holds or took. Every total, chart and campaign figure sums this.
NET = Greatest(F("amount") - F("refunded_amount") - F("disputed_amount"), Value(0))


def editors_who_refund_emails() -> list[str]:
    """Addresses of the active staff who may refund (they act on disputes)."""
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.with_perm("donations.refund_donation", include_superusers=True)
    return sorted(
        {user.email for user in users.filter(is_active=True, is_staff=True) if user.email}
    )


def stripe_event_seen(*, event_id: str) -> bool:
    return StripeEvent.objects.filter(event_id=event_id).exists()


def charge_known(*, payment_intent_id: str, charge_id: str) -> bool:
    """Does a donation hold this PaymentIntent or charge?"""
    condition = Q(pk__in=[])
    if payment_intent_id:
        condition |= Q(stripe_payment_intent_id=payment_intent_id)
    if charge_id:
        condition |= Q(stripe_charge_id=charge_id)
    return Donation.objects.filter(condition).exists()


def gift_known(*, subscription_id: str) -> bool:
    return Gift.objects.filter(stripe_subscription_id=subscription_id).exists()


def gift_starting_here(*, metadata: dict[str, str], customer_id: str) -> Gift | None:
    """The gift made here that a subscription's metadata names, for the same Stripe
    customer: the checkout created the subscription but has not stored its id (Stripe's
    answer was lost, or is still coming). The customer must match because a `gift_id`
    alone proves nothing: a system before this one may have used the same metadata key,
    and its subscriptions must not be tied to (or paid into) one of our gifts."""
    gift_id = str(metadata.get("gift_id") or "")
    if not gift_id.isdigit() or not customer_id:
        return None
    return Gift.objects.filter(
        pk=int(gift_id), adopted_at__isnull=True, stripe_customer_id=customer_id
    ).first()


def campaign_featured() -> Campaign | None:
    """The active campaign shown on /donate/: the newest whose deadline has not passed."""
    today = timezone.localdate()
    return (
        Campaign.objects.filter(is_active=True)
        .filter(Q(deadline__isnull=True) | Q(deadline__gte=today))
        .order_by("-created_at")
        .first()
    )


def campaign_raised(*, campaign: Campaign) -> int:
    return (
        Donation.objects.filter(PAID, campaign=campaign, currency=campaign.currency).aggregate(
            total=Sum(NET)
        )["total"]
        or 0
    )


def live_gifts_counted(*, currency: str) -> QuerySet[Gift]:
    """Live gifts (active or past due) whose latest payment was not refunded in full and
    is not held or lost in a dispute: the ones recurring revenue can count on. A gift
    whose first payment is a bank debit still processing counts once it succeeds (Stripe
    may call its subscription active before that)."""
    # A renewal refunded before its payment was recorded has no paid_at: its refund dates it.
    latest = Donation.objects.filter(
        gift=OuterRef("pk"), status__in=[Donation.Status.PAID, Donation.Status.REFUNDED]
    ).order_by(Coalesce("paid_at", "refunded_at").desc(nulls_last=True))
    return (
        Gift.objects.filter(
            currency=currency, status__in=[Gift.Status.ACTIVE, Gift.Status.PAST_DUE]
        )
        .annotate(
            # A gift without a payment yet has neither: Coalesce keeps it counted.
            latest_status=Coalesce(Subquery(latest.values("status")[:1]), Value("")),
            latest_disputed=Coalesce(Subquery(latest.values("disputed_amount")[:1]), Value(0)),
            processing=Exists(
                Donation.objects.filter(gift=OuterRef("pk"), status=Donation.Status.PROCESSING)
            ),
        )
        .exclude(latest_status="", processing=True)
        .exclude(latest_status=Donation.Status.REFUNDED)
        .exclude(latest_disputed__gt=0)
    )


@dataclass(frozen=True)
class Totals:
    currency: str
    this_month: int
    this_month_count: int
    monthly_recurring: int
    active_gifts: int
    all_time: int
    per_campaign: list[tuple[str, int, int]]
    per_source: list[tuple[str, int, int]]
    # When cached figures were computed (None: computed for this page).
    as_of: datetime | None = None


def _this_month(currency: str) -> dict:
    """This month's paid takings: a range of the (status, paid_at) index, not every row."""
    month_start = timezone.localtime().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return Donation.objects.filter(PAID, currency=currency, paid_at__gte=month_start).aggregate(
        total=Sum(NET), count=Count("id")
    )


OVERVIEW_CACHE_KEY = "donations:overview"


def donation_overview(*, months: int = 12) -> tuple[Totals, list[MonthBar]]:
    """The donations list's totals and monthly chart.

    Exact while donations are few. Past ESTIMATE_ABOVE, the all-time, per-campaign,
    per-source and recurring figures and the chart read every paid row (half a second
    at 200,000), so they come from the cache as of the last `donation_overview_refresh`
    (beat, every ADMIN_FIGURES_REFRESH_SECONDS); this month's takings stay live.
    """
    from dataclasses import replace

    from outlet.core.paginators import ESTIMATE_ABOVE, table_row_estimate

    estimate = table_row_estimate(Donation)
    if estimate is None or estimate <= ESTIMATE_ABOVE:
        return donation_totals(), giving_per_month(months=months)
    overview = cache.get(OVERVIEW_CACHE_KEY)
    if overview is None:
        overview = donation_overview_refresh(months=months)
    totals, bars = overview
    this_month = _this_month(totals.currency)
    live = replace(
        totals, this_month=this_month["total"] or 0, this_month_count=this_month["count"] or 0
    )
    return live, bars


def donation_overview_forget() -> None:
    """Drop the cached overview once the current transaction commits: a refund, a
    dispute or a payment changes the figures, and the next page computes them again."""
    transaction.on_commit(lambda: cache.delete(OVERVIEW_CACHE_KEY))


def donation_overview_refresh(*, months: int = 12) -> tuple[Totals, list[MonthBar]]:
    """Compute the overview exactly and keep it in the cache, stamped with the time."""
    from dataclasses import replace

    overview = (replace(donation_totals(), as_of=timezone.now()), giving_per_month(months=months))
    cache.set(OVERVIEW_CACHE_KEY, overview, settings.ADMIN_FIGURES_REFRESH_SECONDS * 3)
    return overview


def donation_totals() -> Totals:
    """Editors' figures in the site currency, net of refunds and disputes. Monthly
    recurring revenue counts live gifts (active or past due) whose latest payment was
    neither refunded nor disputed, yearly gifts at a twelfth."""
    currency = settings.DONATION_CURRENCY
    paid = Donation.objects.filter(PAID, currency=currency)
    this_month = _this_month(currency)
    live = live_gifts_counted(currency=currency)
    monthly = live.filter(interval=Frequency.MONTH).aggregate(total=Sum("amount"))["total"] or 0
    yearly = live.filter(interval=Frequency.YEAR).aggregate(total=Sum("amount"))["total"] or 0
    per_campaign = [
        (row["campaign__name"] or "No campaign", row["total"], row["count"])
        for row in paid.values("campaign__name")
        .annotate(total=Sum(NET), count=Count("id"))
        .order_by("-total")[:20]
    ]
    per_source = [
        (row["source"] or "Direct", row["total"], row["count"])
        for row in paid.values("source")
        .annotate(total=Sum(NET), count=Count("id"))
        .order_by("-total")[:20]
    ]
    return Totals(
        currency=currency,
        this_month=this_month["total"] or 0,
        this_month_count=this_month["count"] or 0,
        monthly_recurring=monthly + yearly // 12,
        active_gifts=live.count(),
        all_time=paid.aggregate(total=Sum(NET))["total"] or 0,
        per_campaign=per_campaign,
        per_source=per_source,
    )


@dataclass(frozen=True)
class MonthBar:
    month: date
    once: int
    recurring: int

    @property
    def total(self) -> int:
        return self.once + self.recurring


def giving_per_month(*, months: int = 12) -> list[MonthBar]:
    """Paid giving per month for the last `months` months, one-time and recurring apart."""
    now = timezone.localtime()
    start_month = (now.year * 12 + now.month - 1) - (months - 1)
    start = now.replace(
        year=start_month // 12,
        month=start_month % 12 + 1,
        day=1,
        hour=0,
        minute=0,
        second=0,
        microsecond=0,
    )
    rows = (
        Donation.objects.filter(PAID, currency=settings.DONATION_CURRENCY, paid_at__gte=start)
        .annotate(month=TruncMonth("paid_at"))
        .values("month")
        .annotate(
            once=Sum(NET, filter=Q(frequency=Frequency.ONCE)),
            recurring=Sum(NET, filter=~Q(frequency=Frequency.ONCE)),
        )
    )
    by_month: dict[date, tuple[int, int]] = {}
    for row in rows:
        month = row["month"]
        key = month.date() if isinstance(month, datetime) else month
        by_month[key] = (row["once"] or 0, row["recurring"] or 0)
    bars = []
    for offset in range(months):
        index = start_month + offset
        month = date(index // 12, index % 12 + 1, 1)
        once, recurring = by_month.get(month, (0, 0))
        bars.append(MonthBar(month=month, once=once, recurring=recurring))
    return bars


def donor_history(*, donor: Donor) -> tuple[QuerySet[Gift], QuerySet[Donation]]:
    gifts = donor.gifts.exclude(status=Gift.Status.INCOMPLETE).order_by("-created_at")
    donations = donor.donations.filter(
        status__in=[Donation.Status.PAID, Donation.Status.REFUNDED]
    ).order_by("-paid_at")
    return gifts, donations


def public_supporters(*, limit: int = 200) -> list[str]:
    """The names readers asked to be credited under, newest giver first, each donor once
    (a monthly donor is one supporter, not one per payment)."""
    credited = Donation.objects.filter(PAID, public_credit=True).exclude(public_name="")
    newest_name = credited.filter(donor=OuterRef("donor")).order_by("-paid_at")
    rows = (
        credited.values("donor")
        .annotate(latest=Max("paid_at"), name=Subquery(newest_name.values("public_name")[:1]))
        .order_by("-latest")[:limit]
    )
    return [row["name"] for row in rows]


CSV_HEADER = [
    "id",
    "created_at",
    "paid_at",
    "status",
    "frequency",
    "amount",
    "fee_covered",
    "currency",
    "email",
    "name",
    "campaign",
    "source",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "refunded_amount",
    "disputed",
    "stripe_payment_intent",
    "stripe_invoice",
]


def donation_csv_rows(*, queryset: QuerySet[Donation]) -> Iterator[list[str]]:
    """Rows for the CSV export, read in chunks so a large export never sits in memory."""
    yield CSV_HEADER
    for donation in (
        queryset.select_related("donor", "campaign").order_by("pk").iterator(chunk_size=2000)
    ):
        utm = donation.utm or {}
        yield [
            str(donation.pk),
            donation.created_at.isoformat(),
            donation.paid_at.isoformat() if donation.paid_at else "",
            donation.status,
            donation.frequency,
            amount_csv(amount=donation.amount, currency=donation.currency),
            amount_csv(amount=donation.fee_amount, currency=donation.currency),
            donation.currency.upper(),
            donation.donor.email or "",  # None once erased
            donation.donor.name,
            donation.campaign.name if donation.campaign else "",
            donation.source,
            utm.get("utm_source", ""),
            utm.get("utm_medium", ""),
            utm.get("utm_campaign", ""),
            amount_csv(amount=donation.refunded_amount, currency=donation.currency),
            "yes" if donation.disputed_at else "",
            donation.stripe_payment_intent_id or "",
            donation.stripe_invoice_id or "",
        ]


# --- A reader's own records (the readers app's account pages) -----------------------


def gift_next_charge(*, gift: Gift, after: datetime) -> datetime | None:
    """When a live recurring gift next charges, after `after`: Stripe bills on its first
    payment's day every interval, on a short month's last day (Jan 31, Feb 28, Mar 31).
    None for a gift that will not charge again."""
    if not gift.is_live:
        return None
    first = (
        gift.donations.filter(paid_at__isnull=False)
        .order_by("paid_at")
        .values_list("paid_at", flat=True)
        .first()
    )
    anchor = first or gift.created_at
    step = relativedelta(years=1) if gift.interval == Frequency.YEAR else relativedelta(months=1)
    intervals = 1
    while anchor + step * intervals <= after:
        intervals += 1
    return anchor + step * intervals


def donor_for_email(*, email: str) -> Donor | None:
    from outlet.core.addresses import email_normalise

    return Donor.objects.filter(email=email_normalise(email)).first()


def donor_has_given(*, email: str) -> bool:
    """Whether the address gives: a paid donation, or a live recurring gift (a new monthly
    gift counts before its first payment is recorded). A donor row alone does not: the
    donate form makes one before the card step, which may be abandoned."""
    from outlet.core.addresses import email_normalise

    address = email_normalise(email)
    return (
        Donation.objects.filter(PAID, donor__email=address).exists()
        or Gift.objects.filter(
            donor__email=address, status__in=[Gift.Status.ACTIVE, Gift.Status.PAST_DUE]
        ).exists()
    )


def donor_gift(*, donor: Donor, gift_id: int) -> Gift | None:
    return Gift.objects.select_related("donor").filter(pk=gift_id, donor=donor).first()


def donor_receipt(*, donor: Donor, donation_id: int) -> Donation | None:
    """A paid (or since refunded) donation of this donor: what a receipt is made from."""
    return (
        Donation.objects.select_related("donor", "gift")
        .filter(
            pk=donation_id,
            donor=donor,
            status__in=[Donation.Status.PAID, Donation.Status.REFUNDED],
        )
        .first()
    )


def donor_data_export(*, donor: Donor) -> dict:
    """Everything the donations app holds about one donor, for a subject-access request.
    Card numbers are never held; Stripe's ids are, so a refund or dispute can be acted on."""
    from .models import DonorEmail

    def when(value) -> str | None:
        return value.isoformat() if value else None

    return {
        "email": donor.email,
        "name": donor.name,
        "created_at": when(donor.created_at),
        "gifts": [
            {
                "id": gift.pk,
                "amount": gift.amount,
                "currency": gift.currency,
                "interval": gift.interval,
                "status": gift_status_shown(gift),
                "card": f"{gift.card_brand} {gift.card_last4}".strip(),
                "created_at": when(gift.created_at),
                "cancelled_at": when(gift.cancelled_at),
                "stripe_subscription_id": gift.stripe_subscription_id,
            }
            for gift in donor.gifts.all()
        ],
        "donations": [
            {
                "receipt_number": donation.pk,
                "amount": donation.amount,
                "credit_amount": donation.credit_amount,
                "fee_amount": donation.fee_amount,
                "currency": donation.currency,
                "frequency": donation.frequency,
                "status": donation_status_shown(donation),
                "paid_at": when(donation.paid_at),
                "refunded_amount": donation.refunded_amount,
                "card": f"{donation.card_brand} {donation.card_last4}".strip(),
                "campaign": donation.campaign.name if donation.campaign else None,
                "source": donation.source,
                "utm": donation.utm,
                "public_credit": donation.public_credit,
                "public_name": donation.public_name,
                "newsletter_opt_in": donation.newsletter_opt_in,
                "stripe_payment_intent_id": donation.stripe_payment_intent_id,
            }
            for donation in donor.donations.select_related("campaign")
        ],
        "emails_sent": [
            {"kind": email.kind, "status": email.status, "sent_at": when(email.sent_at)}
            for email in DonorEmail.objects.filter(donor=donor)
        ],
    }


@dataclass(frozen=True)
class SourceTotals:
    """What gifts credited to one `source` brought in: one-time and recurring apart.

    Recurring counts the gifts (each a donor's commitment) and sums every paid charge
    of them so far; amounts are net of refunds and disputes, in minor units."""

    one_time_count: int = 0
    one_time_amount: int = 0
    recurring_count: int = 0
    recurring_amount: int = 0

    @property
    def count(self) -> int:
        return self.one_time_count + self.recurring_count

    @property
    def amount(self) -> int:
        return self.one_time_amount + self.recurring_amount


def totals_by_source(*, sources: list[str]) -> dict[str, SourceTotals]:
    """Paid gifts per source, for the sources asked (one grouped query on the indexed
    `source`). A caller elsewhere (a newsletter issue) names its own sources; this app
    knows nothing of what they stand for. In the site's currency only, as every total:
    cents of an earlier currency are not yen."""
    rows = (
        Donation.objects.filter(PAID, source__in=sources, currency=settings.DONATION_CURRENCY)
        .values("source", "frequency")
        .annotate(payments=Count("id"), gifts=Count("gift", distinct=True), total=Sum(NET))
    )
    found: dict[str, dict[str, int]] = {}
    for row in rows:
        figures = found.setdefault(row["source"], {})
        if row["frequency"] == Frequency.ONCE:
            figures["one_time_count"] = figures.get("one_time_count", 0) + row["payments"]
            figures["one_time_amount"] = figures.get("one_time_amount", 0) + (row["total"] or 0)
        else:
            figures["recurring_count"] = figures.get("recurring_count", 0) + row["gifts"]
            figures["recurring_amount"] = figures.get("recurring_amount", 0) + (row["total"] or 0)
    return {source: SourceTotals(**figures) for source, figures in found.items()}


def donation_greeting_name(*, donation: Donation) -> str:
    """The name a thank-you or return page may greet the donor by: the donor record's, only
    when this donation made it (their first, the record no older than the checkout).
    Anyone can type any address into the donate form, and a returning donor's record keeps
    the name they gave before, so greeting by it would tell a stranger the name behind an
    address; "" then (the page says "reader")."""
    earlier = (
        Donation.objects.filter(donor_id=donation.donor_id, created_at__lt=donation.created_at)
        .exclude(pk=donation.pk)
        .exists()
    )
    made_with_it = donation.donor.created_at >= donation.created_at - timedelta(minutes=1)
    return donation.donor.name if made_with_it and not earlier else ""
