"""
Stripe webhooks: verify, record, dispatch, act once.

1. The signature is checked on the raw body (400 and nothing changed otherwise).
2. The event id is inserted under a unique constraint in the same transaction as
   the handler's writes: a repeated delivery finds it and gets 200 at once, and a
   handler that fails rolls the record back so Stripe's retry is applied.
3. One small handler per event type, each idempotent and order-independent (the
   services guard every change by status). Types we do not handle get 200.

Money events are triggers (pretix): a handler fetches the object again through
stripe_gateway when the payload alone cannot be trusted. For payment_intent.succeeded
a verified payload whose amount and currency match the recorded donation is enough,
because a succeeded PaymentIntent never changes back; with STRIPE_WEBHOOK_REFETCH=always
it is fetched every time. Events localstripe cannot send (charge.refunded,
charge.dispute.created, invoice.paid, customer.subscription.updated) are applied
from the verified payload by state rules: refunded amounts only grow, cancelled is final.

The hot path (payment_intent.succeeded for a pending one-time donation whose amount
matches) is one INSERT for the event, one conditional UPDATE … RETURNING, one INSERT for
the receipt and a task queued after commit: benchmarks/webhooks.py measures it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import stripe
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import services, stripe_gateway
from .stripe_objects import (
    charge_facts,
    dispute_facts,
    invoice_facts,
    payment_intent_facts,
    subscription_facts,
)

logger = logging.getLogger(__name__)


def _payment_intent_succeeded(obj: dict[str, Any]) -> str:
    facts = payment_intent_facts(obj)
    if settings.STRIPE_WEBHOOK_REFETCH != "always" and services.payment_record_if_matching(
        facts=facts
    ):
        return "paid"
    target = services.donation_for_payment_intent(facts)
    if target is None:
        # A subscription's PaymentIntent (its invoice event records it) or a stale
        # attempt: nothing to pay here, so nothing worth fetching.
        return "not a one-time donation"
    matches = facts.status == "succeeded" and (target.amount, target.currency) == (
        facts.amount,
        facts.currency,
    )
    if settings.STRIPE_WEBHOOK_REFETCH == "always" or not matches:
        facts = payment_intent_facts(
            stripe_gateway.payment_intent_retrieve(payment_intent_id=facts.id)
        )
    return services.payment_intent_apply(facts=facts, target=target)


def _payment_intent_failed(obj: dict[str, Any]) -> str:
    return services.payment_intent_apply(facts=payment_intent_facts(obj))


def _invoice_paid(obj: dict[str, Any]) -> str:
    return services.invoice_apply(facts=invoice_facts(obj), paid=True)


def _invoice_payment_failed(obj: dict[str, Any]) -> str:
    return services.invoice_apply(facts=invoice_facts(obj), paid=False)


def _subscription_changed(obj: dict[str, Any]) -> str:
    return services.subscription_apply(facts=subscription_facts(obj))


def _subscription_deleted(obj: dict[str, Any]) -> str:
    # The event itself says the subscription ended, whatever status the payload shows.
    return services.subscription_apply(facts=subscription_facts({**obj, "status": "canceled"}))


def _charge_refunded(obj: dict[str, Any]) -> str:
    return services.charge_refund_apply(facts=charge_facts(obj))


def _dispute_created(obj: dict[str, Any]) -> str:
    return services.dispute_apply(facts=dispute_facts(obj))


HANDLERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "payment_intent.succeeded": _payment_intent_succeeded,
    "payment_intent.payment_failed": _payment_intent_failed,
    "invoice.paid": _invoice_paid,
    "invoice.payment_succeeded": _invoice_paid,
    "invoice.payment_failed": _invoice_payment_failed,
    "customer.subscription.created": _subscription_changed,
    "customer.subscription.updated": _subscription_changed,
    "customer.subscription.deleted": _subscription_deleted,
    "charge.refunded": _charge_refunded,
    "charge.dispute.created": _dispute_created,
}


def _text(body: str, status: int = 200) -> HttpResponse:
    return HttpResponse(body, status=status, content_type="text/plain")


@csrf_exempt
@require_POST
def webhook(request: HttpRequest) -> HttpResponse:
    signature = request.headers.get("Stripe-Signature", "")
    try:
        event = stripe_gateway.event_construct(payload=request.body, signature=signature)
    except (ValueError, stripe.SignatureVerificationError):
        return _text("Invalid payload or signature.", status=400)
    event_id, event_type = str(event.get("id") or ""), str(event.get("type") or "")
    handler = HANDLERS.get(event_type)
    if handler is None or not event_id:
        return _text("Ignored.")
    try:
        with transaction.atomic():
            if not services.stripe_event_record(event_id=event_id, event_type=event_type):
                return _text("Already processed.")
            outcome = handler(event["data"]["object"])
    except stripe_gateway.StripeError:
        # We could not read the object from Stripe: let Stripe deliver it again later.
        logger.warning("Stripe unreachable while handling %s %s", event_type, event_id)
        return _text("Try again later.", status=503)
    logger.info("Stripe %s %s: %s", event_type, event_id, outcome)
    return _text("OK")
