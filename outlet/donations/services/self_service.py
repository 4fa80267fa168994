"""
Gift self-service: a donor cancels a recurring gift, changes its amount or swaps its card,
once signed in by a single-use link emailed on request (sign_in.py). Stripe is called
first; our record follows only what Stripe accepted, and the donor gets one email for
each change.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from .. import stripe_gateway
from ..models import DonorEmail, Gift
from .checkout import GENERIC_STRIPE_MESSAGE, card_ready
from .donor_emails import donor_email_queue
from .stripe_events import DONOR_CANCELLATION_COMMENT, gift_end


def _gift_live(gift: Gift) -> None:
    if not gift.is_live or not gift.stripe_subscription_id:
        raise ValidationError("This gift has ended; there is nothing to change.")


def gift_cancel(*, gift: Gift) -> None:
    """The donor stops a recurring gift: Stripe first, then our record and the email."""
    _gift_live(gift)
    try:
        stripe_gateway.subscription_cancel(
            subscription_id=str(gift.stripe_subscription_id), comment=DONOR_CANCELLATION_COMMENT
        )
    except stripe_gateway.StripeError as exc:
        raise ValidationError(GENERIC_STRIPE_MESSAGE) from exc
    gift_end(gift=gift, reason=Gift.EndReason.DONOR)


def gift_amount_change(*, gift: Gift, amount: int) -> None:
    """New monthly (or yearly) amount from the next renewal on; no proration."""
    _gift_live(gift)
    if not settings.DONATION_MIN_AMOUNT <= amount <= settings.DONATION_MAX_AMOUNT:
        raise ValidationError("Please choose an amount within the limits shown.")
    if amount == gift.amount:
        return
    try:
        plan_id = stripe_gateway.plan_ensure(
            amount=amount, currency=gift.currency, interval=gift.interval
        )
        stripe_gateway.subscription_plan_change(
            subscription_id=str(gift.stripe_subscription_id), plan_id=plan_id
        )
    except stripe_gateway.StripeError as exc:
        raise ValidationError(GENERIC_STRIPE_MESSAGE) from exc
    with transaction.atomic():
        # Conditional on the amount this request read: a double submit changes it (and
        # is confirmed by email) once.
        changed = Gift.objects.filter(pk=gift.pk, amount=gift.amount).update(amount=amount)
        if changed:
            donor_email_queue(
                kind=DonorEmail.Kind.AMOUNT_CHANGED, donor_id=gift.donor_id, gift_id=gift.pk
            )


def gift_card_setup_start(*, gift: Gift) -> str:
    """A SetupIntent's client secret for the browser to collect the new card."""
    _gift_live(gift)
    try:
        setup_intent = stripe_gateway.setup_intent_create(
            customer_id=gift.stripe_customer_id,
            idempotency_key=f"gift-{gift.pk}-card-{timezone.now().timestamp()}",
        )
    except stripe_gateway.StripeError as exc:
        raise ValidationError(GENERIC_STRIPE_MESSAGE) from exc
    return str(setup_intent["client_secret"])


def gift_card_update(*, gift: Gift, setup_intent_id: str) -> None:
    """Renewals use the card just set up; Stripe retries a past-due invoice with it."""
    _gift_live(gift)
    try:
        payment_method_id, brand, last4 = card_ready(
            customer_id=gift.stripe_customer_id, setup_intent_id=setup_intent_id
        )
        stripe_gateway.customer_default_card_set(
            customer_id=gift.stripe_customer_id, payment_method_id=payment_method_id
        )
        stripe_gateway.subscription_default_card_set(
            subscription_id=str(gift.stripe_subscription_id), payment_method_id=payment_method_id
        )
    except stripe_gateway.StripeError as exc:
        raise ValidationError(GENERIC_STRIPE_MESSAGE) from exc
    with transaction.atomic():
        Gift.objects.filter(pk=gift.pk).update(card_brand=brand, card_last4=last4)
        donor_email_queue(
            kind=DonorEmail.Kind.CARD_UPDATED,
            donor_id=gift.donor_id,
            gift_id=gift.pk,
            dedupe_key=f"card-updated:{gift.pk}:{setup_intent_id}",  # one card set-up, one email
        )
