"""
Stripe webhooks: verify, record, dispatch, act once.

1. The signature is checked on the raw body (400 and nothing changed otherwise).
2. The event id is inserted under a unique constraint in the same transaction as
   the handler's writes: a repeated delivery finds it and gets 200 at once, and a
   handler that fails rolls the record back so Stripe's retry is applied.
3. One small handler per event type, each idempotent and order-independent (the
   services guard every change by status). Types we do not handle get 200.

Money events are triggers (pretix): the object is fetched again through stripe_gateway
when the payload alone cannot be trusted or lacks what we need, always BEFORE the
transaction that records the event (PREPARE, or a handler raising Refetch), so a repeated
delivery never waits on a lock held across a network call. A current invoice carries no
PaymentIntent or charge: its payments are fetched, so renewals can be refunded and
their refunds and disputes found. For payment_intent.succeeded
a verified payload whose amount and currency match the recorded donation is enough,
because a succeeded PaymentIntent never changes back; with STRIPE_WEBHOOK_REFETCH=always
it is fetched every time. Events localstripe cannot send (charge.refunded,
charge.dispute.*, invoice.paid, customer.subscription.updated) are applied from the
verified payload by state rules: refunded amounts only grow, cancelled is final, a paid
invoice is never failed by a late payment_failed, and an older subscription event never
overrides a newer one (the event's `created` time is kept on the gift). A refund that
failed is the exception that reads: its charge is fetched, and Stripe's amount_refunded
replaces ours. A refund or dispute of a charge no donation holds may be a renewal's whose
invoice.paid is still on its way: the invoice it paid is fetched and tied first.

The hot path (payment_intent.succeeded for a pending one-time donation whose amount
matches) is one INSERT for the event, one conditional UPDATE … RETURNING, one INSERT for
the receipt and a task queued after commit: benchmarks/webhooks.py measures it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from outlet.core.metrics.instruments import stripe_webhook_record

from . import selectors, services, stripe_gateway
from .stripe_objects import (
    ChargeFacts,
    DisputeFacts,
    InvoiceFacts,
    RefundFacts,
    SubscriptionFacts,
    charge_facts,
    dispute_facts,
    invoice_facts,
    payment_intent_facts,
    refund_facts,
    subscription_facts,
)

logger = logging.getLogger(__name__)


class Refetch(Exception):  # noqa: N818 (a signal, not an error)
    """Raised inside the transaction by a handler that finds it needs Stripe's current
    word: the webhook rolls back (the event stays unrecorded), fetches outside any
    transaction, then applies `handler(fetch())` in a fresh one. So no lock is ever held
    across a network call, and the common case pays for no fetch at all."""

    def __init__(self, fetch: Callable[[], Any], handler: Callable[[Any], str]) -> None:
        super().__init__("needs Stripe's current object")
        self.fetch, self.handler = fetch, handler


def _payment_intent_prepare(event: dict[str, Any]) -> dict[str, Any]:
    obj = event["data"]["object"]
    if settings.STRIPE_WEBHOOK_REFETCH == "always":
        return stripe_gateway.payment_intent_retrieve(payment_intent_id=obj["id"])
    return obj


def _payment_intent_succeeded(obj: dict[str, Any]) -> str:
    facts = payment_intent_facts(obj)
    if services.payment_record_if_matching(facts=facts):
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
    if not matches and settings.STRIPE_WEBHOOK_REFETCH != "always":
        raise Refetch(
            lambda: stripe_gateway.payment_intent_retrieve(payment_intent_id=facts.id),
            _payment_intent_apply,
        )
    return services.payment_intent_apply(facts=facts, target=target)


def _payment_intent_apply(obj: dict[str, Any]) -> str:
    return services.payment_intent_apply(facts=payment_intent_facts(obj))


def _payment_intent_processing_prepare(event: dict[str, Any]) -> dict[str, Any]:
    """A bank debit on its way. A current payload names its charge by id only, and the
    receipt wants to say how it was paid (a SEPA debit's mandate): the PaymentIntent is
    read with its charge, once per processing payment (a few, never the hot path)."""
    obj = event["data"]["object"]
    if not isinstance(obj.get("latest_charge"), str):  # none yet, or given whole (localstripe)
        return obj
    return stripe_gateway.payment_intent_retrieve_with_charge(payment_intent_id=obj["id"])


def _invoice_prepare(event: dict[str, Any]) -> InvoiceFacts:
    """Before the transaction: a current invoice's payments (its PaymentIntent and charge),
    and, when neither our records nor the invoice name the gift (the invoice raced the
    checkout request), the subscription's metadata. A StripeError answers 503 and Stripe
    delivers the event again, rather than the payment being recorded without its gift."""
    obj = event["data"]["object"]
    facts = invoice_facts(obj)
    if not facts.subscription_id:
        return facts
    return _gift_named(invoice_facts(stripe_gateway.invoice_payments_fill(invoice=obj)))


def _gift_named(facts: InvoiceFacts) -> InvoiceFacts:
    if not facts.subscription_metadata.get("gift_id") and not selectors.gift_known(
        subscription_id=facts.subscription_id
    ):
        subscription = stripe_gateway.subscription_retrieve(subscription_id=facts.subscription_id)
        facts = replace(facts, subscription_metadata=subscription_facts(subscription).metadata)
    return facts


def _renewal_invoice(
    payment_intent_id: str, charge_id: str, invoice_id: str
) -> InvoiceFacts | None:
    """Before the transaction, for a refund or dispute: when no donation holds the charge,
    it may be a renewal whose invoice.paid has not reached us yet. Read from Stripe which
    invoice it paid (with its payments), so the handler ties the renewal's donation to it
    first. None for a charge we know (no network call) or one that paid no invoice."""
    if selectors.charge_known(payment_intent_id=payment_intent_id, charge_id=charge_id):
        return None
    if not invoice_id and payment_intent_id:
        invoice_id = stripe_gateway.invoice_id_for_payment_intent(
            payment_intent_id=payment_intent_id
        )
    if not invoice_id:
        return None
    facts = invoice_facts(stripe_gateway.invoice_retrieve(invoice_id=invoice_id))
    return _gift_named(facts) if facts.subscription_id else None


def _renewal_link(invoice: InvoiceFacts | None) -> None:
    """Tie the renewal's donation (made now if need be, pending: its invoice.paid records the
    payment and owes the receipt) to its PaymentIntent and charge."""
    if invoice is not None:
        services.invoice_apply(facts=invoice, paid=None)


def _invoice_paid(facts: InvoiceFacts) -> str:
    return services.invoice_apply(facts=facts, paid=True)


def _invoice_payment_failed(facts: InvoiceFacts) -> str:
    return services.invoice_apply(facts=facts, paid=False)


def _invoice_payment_action_required(facts: InvoiceFacts) -> str:
    return services.invoice_apply(facts=facts, paid=False, action_required=True)


def _subscription_prepare(event: dict[str, Any]) -> tuple[SubscriptionFacts, int]:
    obj = event["data"]["object"]
    if event.get("type") == "customer.subscription.deleted":
        # The event itself says the subscription ended, whatever status the payload shows.
        obj = {**obj, "status": "canceled"}
    return subscription_facts(obj), int(event.get("created") or 0)


def _subscription_changed(prepared: tuple[SubscriptionFacts, int]) -> str:
    facts, created = prepared
    return services.subscription_apply(facts=facts, event_created=created)


ChargePrepared = tuple[ChargeFacts, int, InvoiceFacts | None]


def _charge_prepare(event: dict[str, Any]) -> ChargePrepared:
    facts = charge_facts(event["data"]["object"])
    invoice = _renewal_invoice(facts.payment_intent_id, facts.id, facts.invoice_id)
    return facts, int(event.get("created") or 0), invoice


def _charge_refunded(prepared: ChargePrepared) -> str:
    facts, created, invoice = prepared
    _renewal_link(invoice)
    return services.charge_refund_apply(facts=facts, event_created=created)


# A refund in these states gave its money back; its charge is read again before applying.
_REFUND_GAVE_BACK = {"failed", "canceled"}


RefundPrepared = tuple[RefundFacts, ChargeFacts | None, int, InvoiceFacts | None]


def _refund_prepare(event: dict[str, Any]) -> RefundPrepared:
    """A refund that failed or was canceled: read its charge from Stripe (its
    amount_refunded no longer holds the refund), and the time of that reading (the event's,
    on Stripe's clock), and a
    renewal's invoice when the charge is not ours yet. A refund in any other state changes
    no amount (charge.refunded does), so nothing is fetched."""
    facts = refund_facts(event["data"]["object"])
    # Stripe's clock, as in the charge.refunded events this is compared with: the charge is
    # read after the failure event was written, so no event older than it is news.
    read_at = int(event.get("created") or time.time())
    if facts.status not in _REFUND_GAVE_BACK or not facts.charge_id:
        return facts, None, read_at, None
    invoice = _renewal_invoice(facts.payment_intent_id, facts.charge_id, "")
    charge = charge_facts(stripe_gateway.charge_retrieve(charge_id=facts.charge_id))
    return facts, charge, read_at, invoice


def _refund_changed(prepared: RefundPrepared) -> str:
    facts, charge, read_at, invoice = prepared
    _renewal_link(invoice)
    return services.refund_apply(facts=facts, charge=charge, read_at=read_at)


def _dispute_prepare(event: dict[str, Any]) -> tuple[DisputeFacts, InvoiceFacts | None]:
    facts = dispute_facts(event["data"]["object"])
    return facts, _renewal_invoice(facts.payment_intent_id, facts.charge_id, "")


def _dispute_created(prepared: tuple[DisputeFacts, InvoiceFacts | None]) -> str:
    facts, invoice = prepared
    _renewal_link(invoice)
    return services.dispute_apply(facts=facts)


def _dispute_closed(prepared: tuple[DisputeFacts, InvoiceFacts | None]) -> str:
    facts, invoice = prepared
    _renewal_link(invoice)
    return services.dispute_close_apply(facts=facts)


def _as_sent(event: dict[str, Any]) -> Any:
    return event["data"]["object"]


# What to read before the transaction (may call Stripe), then the handler applying it.
# Events whose preparation reads from Stripe: a repeat is checked for first (one cheap
# query) so it costs Stripe nothing. payment_intent.succeeded, the hot path, reads from
# Stripe only when its amounts disagree, so it goes straight to the insert.
_PREPARE_ASKS_STRIPE = {
    "payment_intent.processing",
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice.payment_failed",
    "invoice.payment_action_required",
    "refund.updated",
    "refund.failed",
    "charge.refund.updated",
}
PREPARE: dict[str, Callable[[dict[str, Any]], Any]] = {
    "payment_intent.succeeded": _payment_intent_prepare,
    "payment_intent.processing": _payment_intent_processing_prepare,
    "invoice.paid": _invoice_prepare,
    "invoice.payment_succeeded": _invoice_prepare,
    "invoice.payment_failed": _invoice_prepare,
    "invoice.payment_action_required": _invoice_prepare,
    "customer.subscription.created": _subscription_prepare,
    "customer.subscription.updated": _subscription_prepare,
    "customer.subscription.deleted": _subscription_prepare,
    "charge.refunded": _charge_prepare,
    "charge.dispute.created": _dispute_prepare,
    "charge.dispute.closed": _dispute_prepare,
    "refund.updated": _refund_prepare,
    "refund.failed": _refund_prepare,
    "charge.refund.updated": _refund_prepare,
}

HANDLERS: dict[str, Callable[[Any], str]] = {
    "payment_intent.succeeded": _payment_intent_succeeded,
    "payment_intent.processing": _payment_intent_apply,
    "payment_intent.payment_failed": _payment_intent_apply,
    "invoice.paid": _invoice_paid,
    "invoice.payment_succeeded": _invoice_paid,
    "invoice.payment_failed": _invoice_payment_failed,
    "invoice.payment_action_required": _invoice_payment_action_required,
    "customer.subscription.created": _subscription_changed,
    "customer.subscription.updated": _subscription_changed,
    "customer.subscription.deleted": _subscription_changed,
    "charge.refunded": _charge_refunded,
    "refund.updated": _refund_changed,
    "refund.failed": _refund_changed,
    "charge.refund.updated": _refund_changed,
    "charge.dispute.created": _dispute_created,
    "charge.dispute.closed": _dispute_closed,
}


def _apply_once(
    event_id: str, event_type: str, created: int, handler: Callable[[Any], str], data: Any
) -> str:
    """Record the event and apply it in one transaction; "" when it was a repeat."""
    with transaction.atomic():
        if not services.stripe_event_record(
            event_id=event_id, event_type=event_type, created=created
        ):
            return ""
        return handler(data)


def _text(body: str, status: int = 200) -> HttpResponse:
    return HttpResponse(body, status=status, content_type="text/plain")


@csrf_exempt
@require_POST
def webhook(request: HttpRequest) -> HttpResponse:
    try:
        response, event_type, outcome = _webhook_handle(request)
    except Exception:
        stripe_webhook_record(event_type="", outcome="error", known_types=HANDLERS)
        raise
    stripe_webhook_record(event_type=event_type, outcome=outcome, known_types=HANDLERS)
    return response


def _webhook_handle(request: HttpRequest) -> tuple[HttpResponse, str, str]:
    """The answer, the event's type and the outcome /metrics counts (applied, repeat,
    ignored, rejected, deferred; an exception counts as error)."""
    signature = request.headers.get("Stripe-Signature", "")
    try:
        event = stripe_gateway.event_construct(payload=request.body, signature=signature)
    except (ValueError, stripe_gateway.SignatureVerificationError):
        return _text("Invalid payload or signature.", status=400), "", "rejected"
    return event_apply(event=event)


def event_apply(*, event: dict[str, Any]) -> tuple[HttpResponse, str, str]:
    """Apply one verified event (a webhook's body, or one read back from Stripe's event
    list by a restore's replay): the answer, its type and the outcome. The same path for
    both, so a replayed event is applied, or found a repeat, exactly as a delivery is."""
    event_id, event_type = str(event.get("id") or ""), str(event.get("type") or "")
    created = int(event.get("created") or 0)
    handler = HANDLERS.get(event_type)
    if handler is None or not event_id:
        return _text("Ignored."), event_type, "ignored"
    if event_type in _PREPARE_ASKS_STRIPE and selectors.stripe_event_seen(event_id=event_id):
        # A repeat: answer before reading from Stripe. (The unique insert still decides.)
        return _text("Already processed."), event_type, "repeat"
    try:
        prepared = PREPARE.get(event_type, _as_sent)(event)
        try:
            outcome = _apply_once(event_id, event_type, created, handler, prepared)
        except Refetch as refetch:
            outcome = _apply_once(event_id, event_type, created, refetch.handler, refetch.fetch())
    except stripe_gateway.StripeError:
        # We could not read the object from Stripe: let Stripe deliver it again later.
        logger.warning("Stripe unreachable while handling %s %s", event_type, event_id)
        return _text("Try again later.", status=503), event_type, "deferred"
    if not outcome:
        return _text("Already processed."), event_type, "repeat"
    logger.info("Stripe %s %s: %s", event_type, event_id, outcome)
    return _text("OK"), event_type, "applied"
