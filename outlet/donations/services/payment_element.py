"""
The donate page's Payment Element flow (deferred intent creation).

The page mounts Stripe's Payment Element and Express Checkout Element knowing only the
amount, currency and frequency. When the reader submits (after `elements.submit()` has
checked the details in the browser), `checkout_intent_create` records the pending donation
and creates, through the gateway, the PaymentIntent of a one-time gift or the incomplete
Subscription of a recurring one; the browser confirms that payment (`confirmPayment`,
3-D Secure, wallets and redirect methods included) and then asks `checkout_refresh`
(checkout.py), or comes back to the return page (`checkout_return_read`), which read the
payment from Stripe. The browser's word, and the query string of a redirect, are never
taken for a payment.

Idempotency: a Stripe object made for a donation is stored on it and reused by a repeat
submit of the same checkout, so a key is never sent twice with other parameters (a reader
who corrects their name after an uncertain answer); each create's key also carries a
digest of its parameters. A returning donor's Stripe customer (from their last paid gift)
is reused to charge a one-time gift (never to start a recurring one: see _customer_for),
and nothing else: no customer session, no saved methods shown,
the customer's name and email untouched, so typing someone's address reveals nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext

from .. import stripe_gateway
from ..models import Donation, Gift
from ..stripe_objects import card_facts, invoice_facts, payment_intent_facts, subscription_facts
from .checkout import (
    GENERIC_STRIPE_MESSAGE,
    REFUSED_MESSAGE,
    UNCERTAIN_MESSAGE,
    CheckoutStep,
    checkout_donation_record,
    checkout_refresh,
    donation_fee_compute,
    idempotency_key,
)
from .stripe_events import donation_fail, invoice_apply, subscription_apply

logger = logging.getLogger(__name__)

# PaymentIntent states in which the browser still has something to confirm.
_TO_CONFIRM = ("requires_payment_method", "requires_confirmation", "requires_action")


def _digest(params: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]


def checkout_intent_create(
    *,
    email: str,
    name: str,
    amount: int,
    cover_fee: bool,
    frequency: str,
    checkout_key: str,
    ip: str = "",
    **attribution: Any,
) -> CheckoutStep:
    """Record the pending donation and create the payment the browser confirms: `confirm`
    with its client secret, or the state of an earlier submit of this checkout (`done`,
    `failed`, or `confirm` with the same payment: never a second one)."""
    donation, created = checkout_donation_record(
        email=email,
        name=name,
        amount=amount,
        cover_fee=cover_fee,
        frequency=frequency,
        ip=ip,
        checkout_key=checkout_key,
        **attribution,
    )
    if not created:
        if donation.status == Donation.Status.PAID:
            return CheckoutStep(action="done", donation=donation)
        if donation.status != Donation.Status.PENDING:
            return CheckoutStep(
                action="failed", donation=donation, message=donation.failure_message
            )
        fee = donation_fee_compute(amount=amount, currency=donation.currency) if cover_fee else 0
        if (donation.amount, donation.frequency) != (amount + fee, frequency):
            # The page's button shows the new gift; its payment (if any) is of the old one.
            # The page answers an error with a new checkout; the old one expires unpaid.
            raise ValidationError(
                gettext(
                    "Your gift changed after this payment was started, so nothing was "
                    "charged. Please press the button again to give the amount shown."
                )
            )
    if not donation.donor.email:  # a checkout resumed after its donor was erased
        raise ValidationError(gettext("This checkout can no longer go on. Please start a new one."))
    try:
        return _intent_for(donation=donation, name=name)
    except stripe_gateway.InvalidRequestError as exc:
        logger.warning("Stripe refused checkout for donation %s as malformed: %s", donation.pk, exc)
        if created:
            donation_fail(donation=donation, message=REFUSED_MESSAGE)
        raise ValidationError(gettext(REFUSED_MESSAGE)) from exc
    except stripe_gateway.StripeError as exc:
        logger.warning("Stripe error in checkout for donation %s: %s", donation.pk, exc)
        started = donation.gift_id is not None and (
            Gift.objects.filter(pk=donation.gift_id).exclude(stripe_subscription_id=None).exists()
        )
        if created and not donation.stripe_payment_intent_id and not started:
            # Nothing at Stripe can be paid: a plain failure, and a new attempt may start.
            donation_fail(donation=donation, message=GENERIC_STRIPE_MESSAGE)
            raise ValidationError(gettext(GENERIC_STRIPE_MESSAGE)) from exc
        return CheckoutStep(action="uncertain", donation=donation, message=UNCERTAIN_MESSAGE)


def _customer_for(*, donation: Donation, name: str) -> str:
    """The donation's Stripe customer: the one it already has, the returning donor's
    (their last paid gift's) for a one-time gift, or a new one.

    A recurring gift never reuses one: its first invoice's PaymentIntent comes prefilled
    with the customer's default payment method (Stripe's invoice default), and its
    confirmation secret, handed to whoever typed the address, would confirm it with the
    donor's saved card. A one-time PaymentIntent is created with no payment method."""
    if donation.stripe_customer_id:
        return donation.stripe_customer_id
    customer_id = None
    if donation.gift_id is None:
        customer_id = (
            Donation.objects.filter(donor=donation.donor, status=Donation.Status.PAID)
            .exclude(stripe_customer_id="")
            .order_by("-created_at")
            .values_list("stripe_customer_id", flat=True)
            .first()
        )
    if not customer_id:
        params: dict[str, Any] = {"email": donation.donor.email, "name": name}
        customer = stripe_gateway.customer_create(
            **params, idempotency_key=idempotency_key(donation, f"customer-{_digest(params)}")
        )
        customer_id = str(customer["id"])
    Donation.objects.filter(pk=donation.pk).update(stripe_customer_id=customer_id)
    if donation.gift_id:
        Gift.objects.filter(pk=donation.gift_id).update(stripe_customer_id=customer_id)
    donation.stripe_customer_id = customer_id
    return customer_id


def _intent_for(*, donation: Donation, name: str) -> CheckoutStep:
    customer_id = _customer_for(donation=donation, name=name)
    if donation.gift_id is None:
        return _payment_intent_for(donation=donation, customer_id=customer_id)
    return _subscription_for(donation=donation, customer_id=customer_id)


def _step_for_payment(*, donation: Donation, payment_intent: dict[str, Any]) -> CheckoutStep:
    facts = payment_intent_facts(payment_intent)
    if facts.status in _TO_CONFIRM:
        return CheckoutStep(action="confirm", donation=donation, client_secret=facts.client_secret)
    return checkout_refresh(donation=donation)  # paid, processing or ended: Stripe's word


def _payment_intent_for(*, donation: Donation, customer_id: str) -> CheckoutStep:
    if donation.stripe_payment_intent_id:
        payment_intent = stripe_gateway.payment_intent_retrieve(
            payment_intent_id=donation.stripe_payment_intent_id
        )
        return _step_for_payment(donation=donation, payment_intent=payment_intent)
    params: dict[str, Any] = {
        "amount": donation.amount,
        "currency": donation.currency,
        "customer_id": customer_id,
        "metadata": {"donation_id": str(donation.pk)},
        "description": f"Donation to {settings.OUTLET_NAME}",
    }
    payment_intent = stripe_gateway.payment_intent_create_deferred(
        **params,
        idempotency_key=idempotency_key(
            donation, f"payment-{_digest({**params, **stripe_gateway.payment_methods_offered()})}"
        ),
    )
    Donation.objects.filter(pk=donation.pk, stripe_payment_intent_id__isnull=True).update(
        stripe_payment_intent_id=payment_intent["id"]
    )
    donation.stripe_payment_intent_id = payment_intent["id"]
    return _step_for_payment(donation=donation, payment_intent=payment_intent)


def _subscription_for(*, donation: Donation, customer_id: str) -> CheckoutStep:
    gift = Gift.objects.get(pk=int(donation.gift_id or 0))
    if gift.stripe_subscription_id:
        subscription = stripe_gateway.subscription_retrieve(
            subscription_id=gift.stripe_subscription_id
        )
        latest = subscription.get("latest_invoice")
        invoice_id = latest.get("id") if isinstance(latest, dict) else latest
        if not invoice_id:
            return checkout_refresh(donation=donation)
        return _step_for_invoice(
            donation=donation, invoice=stripe_gateway.invoice_retrieve(invoice_id=str(invoice_id))
        )
    params: dict[str, Any] = {
        "customer_id": customer_id,
        "amount": gift.amount,
        "currency": gift.currency,
        "interval": gift.interval,
        "metadata": {"gift_id": str(gift.pk), "donation_id": str(donation.pk)},
    }
    subscription = stripe_gateway.subscription_create_deferred(
        **params, idempotency_key=idempotency_key(gift, f"subscription-{_digest(params)}")
    )
    facts = subscription_facts(subscription)
    Gift.objects.filter(pk=gift.pk, stripe_subscription_id__isnull=True).update(
        stripe_subscription_id=facts.id
    )
    subscription_apply(facts=facts)
    if facts.latest_invoice is None:
        return checkout_refresh(donation=donation)
    return _step_for_invoice(
        donation=donation,
        invoice=stripe_gateway.invoice_payments_fill(invoice=facts.latest_invoice),
    )


def _step_for_invoice(*, donation: Donation, invoice: dict[str, Any]) -> CheckoutStep:
    """The first invoice's payment for the browser to confirm: its confirmation secret
    (current Stripe) or its PaymentIntent's client secret (localstripe)."""
    facts = invoice_facts(invoice)
    invoice_apply(facts=facts, paid=True if facts.status == "paid" else None)
    donation.refresh_from_db()
    if facts.status == "paid" or donation.status != Donation.Status.PENDING:
        return checkout_refresh(donation=donation)
    secret = facts.confirmation_secret
    if not secret and facts.payment_intent is not None:
        secret = payment_intent_facts(facts.payment_intent).client_secret
    if not secret and facts.payment_intent_id:
        payment_intent = stripe_gateway.payment_intent_retrieve(
            payment_intent_id=facts.payment_intent_id
        )
        secret = payment_intent_facts(payment_intent).client_secret
    if not secret:
        return CheckoutStep(action="uncertain", donation=donation, message=UNCERTAIN_MESSAGE)
    return CheckoutStep(action="confirm", donation=donation, client_secret=secret)


def checkout_payment_method_record(*, donation: Donation) -> None:
    """Keep the card's brand and last four on the donation (and gift) for the receipt,
    read from the PaymentIntent's payment method; other methods leave them empty."""
    if donation.card_last4 or not donation.stripe_payment_intent_id:
        return
    payment_intent = stripe_gateway.payment_intent_retrieve(
        payment_intent_id=donation.stripe_payment_intent_id
    )
    method = payment_intent.get("payment_method")
    method_id = method.get("id") if isinstance(method, dict) else method
    if not method_id:
        return
    brand, last4 = card_facts(stripe_gateway.payment_method_retrieve(payment_method_id=method_id))
    if not last4:
        return
    Donation.objects.filter(pk=donation.pk, card_last4="").update(
        card_brand=brand, card_last4=last4
    )
    if donation.gift_id:
        Gift.objects.filter(pk=donation.gift_id, card_last4="").update(
            card_brand=brand, card_last4=last4
        )
    donation.card_brand, donation.card_last4 = brand, last4


def checkout_confirmed(*, donation: Donation) -> CheckoutStep:
    """After the browser's `confirmPayment` (whatever it said): keep the card's details for
    the receipt, then read the payment from Stripe and apply it (checkout_refresh)."""
    if donation.status == Donation.Status.PENDING:
        try:
            checkout_payment_method_record(donation=donation)
        except stripe_gateway.StripeError as exc:
            logger.info("Card details of donation %s not read: %s", donation.pk, exc)
    return checkout_refresh(donation=donation)


class ReturnMismatch(Exception):
    """The payment named by a return address is not this checkout's."""


def checkout_return_read(*, donation: Donation, payment_intent_id: str) -> str:
    """The outcome shown on the return page of a redirect method (iDEAL, Bancontact, a
    bank's 3-D Secure page): `succeeded`, `processing` (a bank debit), `failed` or
    `pending` (Stripe has not decided yet).

    `donation` comes from the checkout token in the return address (only the browser that
    started the checkout has it) and must hold the PaymentIntent Stripe names in the query,
    else ReturnMismatch. The outcome is read from Stripe through the gateway, never from
    `redirect_status`; reading twice (a reload) only reads again."""
    if not payment_intent_id or payment_intent_id != donation.stripe_payment_intent_id:
        raise ReturnMismatch(payment_intent_id)
    step = checkout_confirmed(donation=donation)
    donation.refresh_from_db()
    if donation.status == Donation.Status.PAID:
        return "succeeded"
    if donation.status == Donation.Status.PROCESSING:  # a bank debit: days, not a failure
        return "processing"
    if step.action == "failed" or donation.status != Donation.Status.PENDING:
        return "failed"
    try:
        status = payment_intent_facts(
            stripe_gateway.payment_intent_retrieve(payment_intent_id=payment_intent_id)
        ).status
    except stripe_gateway.StripeError:
        return "pending"
    return "processing" if status == "processing" else "pending"
