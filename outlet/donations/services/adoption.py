"""
Adopting the monthly donors of a Stripe account the site did not create (stripe_adopt).

Read → convert → write, as the importers do:

- read: the account's subscriptions, whatever their status, each one's paid invoices and
  its customer's charges (what was refunded before the move), through `stripe_gateway`
  (lists only: nothing is created, changed or charged at Stripe);
- convert: `adoption_plan` decides, from the subscription's facts alone, whether the site
  can hold it (its currency, an interval of one month or one year, one price, a customer
  with an email to sign in with) and what the gift's status means here;
- write: one transaction per subscription records the donor, the gift tied to the existing
  customer and subscription, and its paid invoices as paid donations. Gift and donation
  keep their Stripe ids under unique constraints, so a second run updates (status, amount,
  card) and never doubles; history owes no receipt and no welcome, so no email is queued.

From then on the gift is like any made here: its renewals, failures, refunds, disputes and
cancellation arrive by webhook and find it by its subscription id, and the donor signs in
to the reader account with the customer's email.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop, ngettext

from outlet.core.addresses import email_normalise

from .. import selectors, stripe_gateway
from ..currencies import amount_format
from ..models import Donation, Donor, Frequency, Gift
from ..stripe_objects import (
    ChargeFacts,
    InvoiceFacts,
    SubscriptionFacts,
    charge_facts,
    invoice_facts,
    subscription_facts,
)
from .refunds import charge_refund_apply
from .stripe_events import SUBSCRIPTION_STATUS

# A subscription's status, read here: trialing runs (its first charge comes when the trial
# ends), unpaid is past due (Stripe stopped retrying but did not cancel), incomplete waits
# for a first payment that never came (its invoice.paid would start it), and the ones that
# ended stay as cancelled gifts, kept for the donor's history.
NOT_ADOPTED = {
    "incomplete_expired": gettext_noop("its first payment never succeeded"),
    "paused": gettext_noop("paused at Stripe; the site has no paused gifts"),
}
SUPPORTED_INTERVALS = ("month", "year")
# The donor's columns; Stripe keeps names of 256 characters and addresses of 512.
_NAME_LENGTH = Donor._meta.get_field("name").max_length or 200
_EMAIL_LENGTH = Donor._meta.get_field("email").max_length or 254


@dataclass
class AdoptionReport:
    subscriptions: int = 0
    adopted: int = 0
    updated: int = 0
    skipped: int = 0
    failed: int = 0
    donations: int = 0
    unmatched: int = 0
    dry_run: bool = False
    lines: list[str] = field(default_factory=list)

    def line(self, subscription_id: str, outcome: str) -> None:
        self.lines.append(f"{subscription_id}: {outcome}")

    @property
    def summary(self) -> str:
        return (
            f"stripe_adopt: subscriptions={self.subscriptions} adopted={self.adopted} "
            f"updated={self.updated} skipped={self.skipped} failed={self.failed} "
            f"donations={self.donations}"
        )


@dataclass(frozen=True)
class AdoptionFilter:
    """Which subscriptions to adopt: any of these prices (or plans), any of these products,
    and every metadata pair; an empty part matches all."""

    prices: frozenset[str] = frozenset()
    products: frozenset[str] = frozenset()
    metadata: tuple[tuple[str, str], ...] = ()

    def matches(self, facts: SubscriptionFacts) -> bool:
        if self.prices and facts.price_id not in self.prices:
            return False
        if self.products and facts.product_id not in self.products:
            return False
        return all(facts.metadata.get(key) == value for key, value in self.metadata)


def adoption_filter_parse(
    *, prices: Iterable[str] = (), products: Iterable[str] = (), metadata: Iterable[str] = ()
) -> AdoptionFilter:
    """The filter from the command's or the admin form's words; KEY=VALUE pairs, else a
    ValueError fit for a person."""
    pairs = []
    for pair in metadata:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(_("Metadata filters are KEY=VALUE, not %(pair)s.") % {"pair": pair})
        pairs.append((key.strip(), value.strip()))
    return AdoptionFilter(
        prices=frozenset(p.strip() for p in prices if p.strip()),
        products=frozenset(p.strip() for p in products if p.strip()),
        metadata=tuple(pairs),
    )


@dataclass(frozen=True)
class AdoptionPlan:
    """What a subscription becomes here, or why it cannot (`skip`)."""

    skip: str = ""
    status: str = ""
    email: str = ""


def adoption_plan(facts: SubscriptionFacts) -> AdoptionPlan:
    """Pure: can the site hold this subscription as a gift, and in which status."""
    if facts.status in NOT_ADOPTED:
        return AdoptionPlan(skip=_(NOT_ADOPTED[facts.status]))
    status = SUBSCRIPTION_STATUS.get(facts.status)
    if status is None:
        return AdoptionPlan(skip=_("unknown status %(status)s") % {"status": facts.status})
    if facts.currency != settings.DONATION_CURRENCY:
        return AdoptionPlan(
            skip=_("currency %(currency)s is not the site's (%(site)s)")
            % {"currency": facts.currency.upper(), "site": settings.DONATION_CURRENCY.upper()}
        )
    if facts.interval not in SUPPORTED_INTERVALS or facts.interval_count != 1:
        return AdoptionPlan(
            skip=_("billed every %(count)s %(interval)s; gifts here are monthly or yearly")
            % {"count": facts.interval_count, "interval": facts.interval or "?"}
        )
    if facts.items_count != 1:
        return AdoptionPlan(
            skip=_("%(count)s prices on one subscription; a gift here is one amount")
            % {"count": facts.items_count}
        )
    if facts.amount <= 0:
        return AdoptionPlan(skip=_("nothing to pay (amount 0)"))
    email = email_normalise(facts.customer_email) if facts.customer_email else ""
    if not email:
        return AdoptionPlan(
            skip=_("customer %(customer)s has no email, so the donor could not sign in")
            % {"customer": facts.customer_id}
        )
    try:
        validate_email(email)
        if len(email) > _EMAIL_LENGTH:
            raise ValidationError("too long")
    except ValidationError:
        # Stripe checks little; here the donor signs in with it, and the column would
        # refuse a longer one (and stop the run).
        return AdoptionPlan(
            skip=_("customer %(customer)s's email is not an email address")
            % {"customer": facts.customer_id}
        )
    return AdoptionPlan(status=status, email=email)


def _when(timestamp: int | None) -> datetime | None:
    return datetime.fromtimestamp(timestamp, tz=UTC) if timestamp else None


def subscriptions_adopt(
    *, adoption_filter: AdoptionFilter | None = None, dry_run: bool = False
) -> AdoptionReport:
    """Adopt every matching subscription of the Stripe account; the report says what
    became of each. With `dry_run` the same work is done and each subscription's writes
    are rolled back, so the report is what a real run would do. A Stripe error while
    listing the subscriptions stops the run (raised) after the subscriptions already
    written."""
    adoption_filter = adoption_filter or AdoptionFilter()
    report = AdoptionReport(dry_run=dry_run)
    # Every subscription is read after this (Stripe's clock, in whole seconds).
    started = int(time.time())
    # Each subscription is written (or, in a dry run, rolled back) in a transaction of its
    # own, after its reads: one transaction around the whole run would hold its locks (on
    # SQLite, the one write lock of the site) while Stripe answers for all the others.
    for obj in stripe_gateway.subscriptions_list_all():
        _subscription_adopt(
            obj=obj, adoption_filter=adoption_filter, report=report, started=started
        )
    if report.unmatched:
        report.lines.append(
            _("%(count)s other subscriptions do not match the filters.")
            % {"count": report.unmatched}
        )
    if not dry_run:
        selectors.donation_overview_forget()
    return report


def _subscription_adopt(
    *, obj: dict[str, Any], adoption_filter: AdoptionFilter, report: AdoptionReport, started: int
) -> None:
    facts = subscription_facts(obj)
    if not adoption_filter.matches(facts):
        report.unmatched += 1
        return
    report.subscriptions += 1
    existing = Gift.objects.filter(stripe_subscription_id=facts.id).first()
    if existing is None:
        # The checkout's retry and the webhooks tie the two; adopting it would make a
        # second gift of one subscription.
        existing = selectors.gift_starting_here(
            metadata=facts.metadata, customer_id=facts.customer_id
        )
    if existing is not None and existing.adopted_at is None:
        report.skipped += 1
        report.line(
            facts.id, _("skipped: a gift made on this site (#%(id)s)") % {"id": existing.pk}
        )
        return
    plan = adoption_plan(facts)
    if plan.skip:
        report.skipped += 1
        report.line(facts.id, _("skipped: %(reason)s") % {"reason": plan.skip})
        return
    try:
        # Read before writing: no row is locked while Stripe answers.
        invoices = [invoice_facts(invoice) for invoice in _paid_invoices(facts.id)]
        charges_read_at = int(time.time())
        refunded = _refunded_charges(facts.customer_id) if invoices else []
        with transaction.atomic():
            outcome, recorded = _gift_write(
                facts=facts, plan=plan, invoices=invoices, started=started
            )
            for charge in refunded:
                # The same rule as a charge.refunded webhook: refunded amounts only grow,
                # and a refund's failure read from Stripe since this read is newer.
                charge_refund_apply(facts=charge, event_created=charges_read_at)
            if report.dry_run:
                transaction.set_rollback(True)
    except (stripe_gateway.StripeError, IntegrityError) as error:
        report.failed += 1
        report.line(facts.id, _("failed: %(error)s") % {"error": _error_text(error)})
        return
    report.donations += recorded
    if outcome == "adopted":
        report.adopted += 1
    elif outcome == "updated":
        report.updated += 1
    outcome_words = {"adopted": _("adopted"), "updated": _("updated"), "unchanged": _("unchanged")}
    report.line(
        facts.id,
        ngettext(
            "%(outcome)s: %(email)s, %(amount)s, %(frequency)s, %(status)s, "
            "%(count)s past payment recorded",
            "%(outcome)s: %(email)s, %(amount)s, %(frequency)s, %(status)s, "
            "%(count)s past payments recorded",
            recorded,
        )
        % {
            "outcome": outcome_words[outcome],
            "email": plan.email,
            "amount": amount_format(amount=facts.amount, currency=facts.currency),
            "frequency": Frequency(facts.interval).label,
            "status": Gift.Status(plan.status).label,
            "count": recorded,
        },
    )


def _paid_invoices(subscription_id: str) -> Iterator[dict[str, Any]]:
    # localstripe cannot filter by status: the gateway leaves it out there, so read it here.
    for invoice in stripe_gateway.invoices_paid_list(subscription_id=subscription_id):
        if invoice.get("status") == "paid":
            yield invoice


def _refunded_charges(customer_id: str) -> list[ChargeFacts]:
    if not customer_id:
        return []
    charges = (
        charge_facts(charge) for charge in stripe_gateway.charges_list(customer_id=customer_id)
    )
    return [charge for charge in charges if charge.amount_refunded]


def _error_text(error: Exception) -> str:
    if isinstance(error, stripe_gateway.StripeError):
        return str(error.user_message or type(error).__name__)
    return str(error)[:200]


def _gift_write(
    *, facts: SubscriptionFacts, plan: AdoptionPlan, invoices: list[InvoiceFacts], started: int
) -> tuple[str, int]:
    """Write the gift and its history; ("adopted" | "updated" | "unchanged", donations)."""
    now = timezone.now()
    gift = Gift.objects.select_for_update().filter(stripe_subscription_id=facts.id).first()
    ended = plan.status == Gift.Status.CANCELLED
    if gift is None:
        # Only a new gift takes its donor from Stripe's address: an adopted one keeps the
        # donor it has, who may have moved to another address here (Stripe keeps the old
        # one) or been erased.
        donor, _created = Donor.objects.get_or_create(
            email=plan.email, defaults={"name": facts.customer_name[:_NAME_LENGTH]}
        )
        gift = Gift.objects.create(
            donor=donor,
            amount=facts.amount,
            currency=facts.currency,
            interval=facts.interval,
            status=plan.status,
            stripe_customer_id=facts.customer_id,
            stripe_subscription_id=facts.id,
            card_brand=facts.card_brand,
            card_last4=facts.card_last4,
            cancelled_at=(_when(facts.ended_at) or now) if ended else None,
            end_reason=Gift.EndReason.OTHER if ended else "",
            # What was read is Stripe's word as of now: an event written before it is older.
            stripe_event_at=int(time.time()),
            adopted_at=now,
        )
        if facts.created:
            Gift.objects.filter(pk=gift.pk).update(created_at=_when(facts.created))
        outcome = "adopted"
    else:
        refreshed = _gift_refresh(gift=gift, facts=facts, plan=plan, started=started)
        outcome = "updated" if refreshed else "unchanged"
    recorded = sum(_history_record(gift=gift, invoice=invoice, now=now) for invoice in invoices)
    return outcome, recorded


def _gift_refresh(
    *, gift: Gift, facts: SubscriptionFacts, plan: AdoptionPlan, started: int
) -> bool:
    """An adopted gift read again: follow Stripe's status, amount and card. Cancelled stays
    final, as for webhooks. A subscription event applied since the run started may be
    newer than what the run read (the page was read before this subscription's turn): its
    status and amount stay (an end read here is final at Stripe, so it applies), and the
    next run follows them."""
    changes: dict[str, Any] = {}
    newer_applied = gift.stripe_event_at > started
    ends = plan.status == Gift.Status.CANCELLED
    if (
        gift.status != Gift.Status.CANCELLED
        and gift.status != plan.status
        and (ends or not newer_applied)
    ):
        changes["status"] = plan.status
        if ends:
            changes.update(
                cancelled_at=_when(facts.ended_at) or timezone.now(),
                end_reason=Gift.EndReason.OTHER,
            )
    if facts.amount != gift.amount and not newer_applied:
        changes["amount"] = facts.amount
    erased = Donor.objects.filter(pk=gift.donor_id, email__isnull=True).exists()
    if (
        facts.card_last4
        and not erased  # an erasure cleared the card's digits: they stay cleared
        and (facts.card_brand, facts.card_last4) != (gift.card_brand, gift.card_last4)
    ):
        changes.update(card_brand=facts.card_brand, card_last4=facts.card_last4)
    if changes:
        Gift.objects.filter(pk=gift.pk).update(**changes)
    return bool(changes)


def _history_record(*, gift: Gift, invoice: InvoiceFacts, now: datetime) -> bool:
    """One paid invoice as a paid donation of the gift, once (by its invoice id). No
    receipt: the donor was thanked by the old system when they paid."""
    if not invoice.amount_paid and not invoice.credit_applied:
        return False  # paid with nothing taken (a 100 % coupon): no money to record
    if Donation.objects.filter(stripe_invoice_id=invoice.id).exists():
        return False
    payment_intent_id = invoice.payment_intent_id or None
    if (
        payment_intent_id
        and Donation.objects.filter(stripe_payment_intent_id=payment_intent_id).exists()
    ):
        payment_intent_id = None
    paid_at = _when(invoice.paid_at) or _when(invoice.created) or now
    donation = Donation.objects.create(
        donor_id=gift.donor_id,
        gift=gift,
        frequency=gift.interval,
        amount=invoice.amount_paid,
        credit_amount=invoice.credit_applied,
        currency=invoice.currency or gift.currency,
        status=Donation.Status.PAID,
        paid_at=paid_at,
        stripe_customer_id=gift.stripe_customer_id,
        stripe_invoice_id=invoice.id,
        stripe_payment_intent_id=payment_intent_id,
        stripe_charge_id=invoice.charge_id,
        card_brand=gift.card_brand if invoice.amount_paid else "",
        card_last4=gift.card_last4 if invoice.amount_paid else "",
        adopted_at=now,
    )
    Donation.objects.filter(pk=donation.pk).update(created_at=_when(invoice.created) or paid_at)
    return True
