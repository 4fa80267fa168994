"""
Checkouts a reader left before Stripe's charge step: the card form refused the card, the
tab was closed. `checkout_donation_record` writes its pending rows before Stripe is asked (so a
webhook always finds them), which leaves such rows behind; they are not donations. Until
they expire they are kept out of the editors' list and called abandoned in a donor's data
download (selectors.CHECKOUT_UNFINISHED); after DONATION_CHECKOUT_EXPIRY_HOURS they are
marked abandoned, and their never-started recurring gifts cancelled, so a late submit of
the old page can never charge them.

The Payment Element creates the payment at Stripe when the reader submits, before they
confirm it, so a checkout left at the confirm step (the bank's page closed, a wallet sheet
dismissed) has a PaymentIntent, or an incomplete Subscription, and is not "unfinished" by
the rule above. After the same expiry its payment is read through the gateway: one still
waiting for the browser (requires_payment_method / _confirmation / _action) is cancelled
at Stripe first (an old tab's late confirm then fails there) and the donation marked
abandoned; a subscription Stripe expired itself (`incomplete_expired`, after 23 hours) is
marked the same way, its gift ended. Money that arrived or is on its way (succeeded,
processing, a paid invoice) is never abandoned: the payment path (webhooks, the return
page) records it. A Stripe error leaves the checkout for the next run.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_noop

from .. import stripe_gateway
from ..models import Donation, Gift
from ..stripe_objects import invoice_facts, payment_intent_facts, subscription_facts

logger = logging.getLogger(__name__)

EXPIRED_MESSAGE = gettext_noop(
    "This payment form expired before the card was charged, so nothing was charged. "
    "Please reload the page and try again."
)


# PaymentIntent states in which nothing was paid and the browser still has to confirm.
UNCONFIRMED = ("requires_payment_method", "requires_confirmation", "requires_action")
# Checkouts with a payment at Stripe read per run: each costs a request or three.
INTENTS_PER_RUN = 200


def checkouts_abandoned_expire(*, older_than: timedelta | None = None) -> int:
    """Mark unfinished checkouts older than the expiry abandoned; the number marked. A
    pending row that never reached the charge step (no card read, no payment or invoice
    at Stripe) changes in one conditional UPDATE: a repeat, or a checkout charged
    meanwhile, changes nothing. Then the unconfirmed payments of older checkouts are
    cancelled at Stripe and their donations marked (checkout_intents_expire)."""
    from ..selectors import CHECKOUT_UNFINISHED

    age = older_than or timedelta(hours=settings.DONATION_CHECKOUT_EXPIRY_HOURS)
    cutoff = timezone.now() - age
    expired = Donation.objects.filter(CHECKOUT_UNFINISHED, created_at__lt=cutoff)
    with transaction.atomic():
        gift_ids = list(expired.exclude(gift=None).values_list("gift_id", flat=True))
        count = expired.update(status=Donation.Status.ABANDONED, failure_message=EXPIRED_MESSAGE)
        # Only the gifts of checkouts this UPDATE abandoned: one whose card was read since
        # the list was made is being charged, and its gift must stay able to start.
        Gift.objects.filter(
            pk__in=gift_ids,
            status=Gift.Status.INCOMPLETE,
            stripe_subscription_id=None,
            donations__status=Donation.Status.ABANDONED,
        ).update(
            status=Gift.Status.CANCELLED,
            cancelled_at=timezone.now(),
            end_reason=Gift.EndReason.PAYMENT_FAILED,
        )
    return count + checkout_intents_expire(cutoff=cutoff)


def checkout_intents_expire(*, cutoff: datetime) -> int:
    """Checkouts created before `cutoff` whose payment at Stripe was never confirmed:
    cancelled there, marked abandoned here; the number marked."""
    waiting = (
        Donation.objects.filter(status=Donation.Status.PENDING, created_at__lt=cutoff)
        .filter(
            Q(gift=None, stripe_payment_intent_id__isnull=False)
            | Q(gift__status=Gift.Status.INCOMPLETE, gift__stripe_subscription_id__isnull=False)
        )
        .select_related("gift")
        .order_by("created_at")[:INTENTS_PER_RUN]
    )
    marked = 0
    for donation in waiting:
        try:
            if donation.gift is None:
                ended = _payment_intent_end(donation)
            else:
                ended = _subscription_end_if_unpaid(donation.gift)
        except stripe_gateway.StripeError as exc:
            logger.warning("Checkout of donation %s not expired now: %s", donation.pk, exc)
            continue
        if ended and _donation_abandon(donation):
            marked += 1
    return marked


def _payment_intent_end(donation: Donation) -> bool:
    """Whether the one-time gift's PaymentIntent is cancelled (by us now, or before)."""
    payment_intent_id = str(donation.stripe_payment_intent_id)
    status = payment_intent_facts(
        stripe_gateway.payment_intent_retrieve(payment_intent_id=payment_intent_id)
    ).status
    if status in UNCONFIRMED:
        try:
            status = payment_intent_facts(
                stripe_gateway.payment_intent_cancel(
                    payment_intent_id=payment_intent_id,
                    idempotency_key=f"outlet-expire-{payment_intent_id}",
                )
            ).status
        except stripe_gateway.InvalidRequestError:
            return False  # confirmed meanwhile: the payment path has it
    return status == "canceled"


def _subscription_end_if_unpaid(gift: Gift) -> bool:
    """Whether the recurring gift's incomplete subscription has ended unpaid: expired by
    Stripe, or cancelled now because its first payment still waits for the browser. The
    gift is ended too (no email: it never started)."""
    from .stripe_events import gift_end

    subscription_id = str(gift.stripe_subscription_id)
    facts = subscription_facts(
        stripe_gateway.subscription_retrieve(subscription_id=subscription_id)
    )
    if facts.status == "incomplete" and _first_payment_unconfirmed(facts.latest_invoice):
        try:
            facts = subscription_facts(
                stripe_gateway.subscription_cancel(subscription_id=subscription_id)
            )
        except stripe_gateway.InvalidRequestError:
            facts = subscription_facts(
                stripe_gateway.subscription_retrieve(subscription_id=subscription_id)
            )
    if facts.status not in ("incomplete_expired", "canceled"):
        return False
    gift_end(gift=gift, reason=Gift.EndReason.PAYMENT_FAILED)
    return True


def _first_payment_unconfirmed(latest_invoice: dict | str | None) -> bool:
    invoice_id = latest_invoice.get("id") if isinstance(latest_invoice, dict) else latest_invoice
    if not invoice_id:
        return True  # no invoice, nothing to pay
    invoice = invoice_facts(stripe_gateway.invoice_retrieve(invoice_id=str(invoice_id)))
    if invoice.status in ("paid", "void", "uncollectible") or invoice.amount_paid:
        return invoice.status == "void"
    payment = invoice.payment_intent
    if payment is None and invoice.payment_intent_id:
        payment = stripe_gateway.payment_intent_retrieve(
            payment_intent_id=invoice.payment_intent_id
        )
    return payment is None or payment_intent_facts(payment).status in UNCONFIRMED


def _donation_abandon(donation: Donation) -> bool:
    """Pending to abandoned, in one conditional UPDATE: a donation paid meanwhile stays."""
    return bool(
        Donation.objects.filter(pk=donation.pk, status=Donation.Status.PENDING).update(
            status=Donation.Status.ABANDONED, failure_message=EXPIRED_MESSAGE
        )
    )
