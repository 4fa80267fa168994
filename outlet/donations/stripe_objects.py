"""
Read the fields we need from Stripe objects, in one place.

localstripe speaks API version 2017-08-15; Stripe today sends the current shape.
They differ where it matters: a current invoice names its subscription under
`parent.subscription_details.subscription` and lists its PaymentIntents under
`payments`, a current PaymentIntent has `latest_charge` and no `charges` list or
`invoice`, and a subscription item carries a `price` beside (or instead of) a
`plan`. A current invoice's payments come with it only when fetched
(`stripe_gateway.invoice_payments_fill`); with its PaymentIntent expanded, the charge is
that PaymentIntent's `latest_charge`. A current first invoice hands the browser its
`confirmation_secret`. Every other module reads Stripe data through these functions only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _id(value: Any) -> str:
    """An object reference is an id string or, when expanded, a dict with an id."""
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def _metadata(obj: dict[str, Any] | None) -> dict[str, str]:
    return dict((obj or {}).get("metadata") or {})


@dataclass(frozen=True)
class PaymentIntentFacts:
    id: str
    status: str
    amount: int
    currency: str
    customer_id: str
    invoice_id: str
    charge_id: str
    metadata: dict[str, str] = field(default_factory=dict)
    failure_message: str = ""
    client_secret: str = ""
    # From the charge, when it came with the PaymentIntent (expanded `latest_charge`, or
    # localstripe's `charges` list): how it was paid, and a SEPA debit's mandate.
    payment_method_type: str = ""
    mandate_reference: str = ""
    account_last4: str = ""


@dataclass(frozen=True)
class PaymentMethodDetails:
    type: str = ""
    mandate_reference: str = ""
    last4: str = ""


def payment_method_details(charge: Any) -> PaymentMethodDetails:
    """How a charge was paid: its `payment_method_details` type, the mandate of a SEPA
    debit and the last four digits of the card or bank account. Empty for a charge given
    only by id (not expanded) or without details (localstripe)."""
    if not isinstance(charge, dict):
        return PaymentMethodDetails()
    details = charge.get("payment_method_details") or {}
    kind = str(details.get("type") or "")
    own = details.get(kind) or {} if kind else {}
    return PaymentMethodDetails(
        type=kind,
        mandate_reference=str(own.get("mandate") or "") if kind == "sepa_debit" else "",
        last4=str(own.get("last4") or ""),
    )


def payment_intent_facts(obj: dict[str, Any]) -> PaymentIntentFacts:
    charge = obj.get("latest_charge")
    charge_id = _id(charge)
    if not charge_id:
        charges = (obj.get("charges") or {}).get("data") or []
        charge = charges[-1] if charges else None
        charge_id = _id(charge)
    details = payment_method_details(charge)
    error = obj.get("last_payment_error") or {}
    return PaymentIntentFacts(
        id=obj["id"],
        status=obj.get("status") or "",
        amount=int(obj.get("amount_received") or obj.get("amount") or 0),
        currency=(obj.get("currency") or "").lower(),
        customer_id=_id(obj.get("customer")),
        invoice_id=_id(obj.get("invoice")),
        charge_id=charge_id,
        metadata=_metadata(obj),
        failure_message=str(error.get("message") or ""),
        client_secret=str(obj.get("client_secret") or ""),
        payment_method_type=details.type,
        mandate_reference=details.mandate_reference,
        account_last4=details.last4,
    )


@dataclass(frozen=True)
class InvoiceFacts:
    id: str
    status: str
    subscription_id: str
    subscription_metadata: dict[str, str]
    payment_intent_id: str
    payment_intent: dict[str, Any] | None
    charge_id: str
    confirmation_secret: str
    amount_paid: int
    amount_due: int
    currency: str
    customer_id: str
    next_payment_attempt: int | None
    credit_applied: int = 0
    hosted_invoice_url: str = ""
    created: int = 0
    paid_at: int | None = None


def _credit_applied(obj: dict[str, Any]) -> int:
    """What the customer's credit balance paid of the invoice (never charged to a card):
    the balance's change when the invoice says where it ended, else the credit there was,
    up to the invoice's total. A positive balance (the customer owed) paid nothing."""
    starting = int(obj.get("starting_balance") or 0)
    if starting >= 0:
        return 0
    ending = obj.get("ending_balance")
    if ending is not None:
        return max(0, int(ending) - starting)
    return min(int(obj.get("total") or 0), -starting)


def invoice_facts(obj: dict[str, Any]) -> InvoiceFacts:
    details = (obj.get("parent") or {}).get("subscription_details") or {}
    subscription_id = _id(details.get("subscription")) or _id(obj.get("subscription"))
    subscription_metadata = dict(details.get("metadata") or {})
    if isinstance(obj.get("subscription"), dict):
        subscription_metadata = subscription_metadata or _metadata(obj["subscription"])

    payment_intent = obj.get("payment_intent")
    payment_intent_id = _id(payment_intent)
    charge_id = _id(obj.get("charge"))
    if not payment_intent_id:
        # Current shape: an invoice's payments (fetched), the paid one preferred.
        for invoice_payment in (obj.get("payments") or {}).get("data") or []:
            payment = invoice_payment.get("payment") or {}
            candidate = payment.get("payment_intent")
            if candidate:
                payment_intent, payment_intent_id = candidate, _id(candidate)
            elif payment.get("charge"):  # a payment made without a PaymentIntent
                charge_id = _id(payment["charge"])
            if invoice_payment.get("status") == "paid":
                break
    if not charge_id and isinstance(payment_intent, dict):
        charge_id = payment_intent_facts(payment_intent).charge_id
    return InvoiceFacts(
        id=obj["id"],
        status=obj.get("status") or "",
        subscription_id=subscription_id,
        subscription_metadata=subscription_metadata,
        payment_intent_id=payment_intent_id,
        payment_intent=payment_intent if isinstance(payment_intent, dict) else None,
        charge_id=charge_id,
        confirmation_secret=str((obj.get("confirmation_secret") or {}).get("client_secret") or ""),
        amount_paid=int(obj.get("amount_paid") or 0),
        amount_due=int(obj.get("amount_due") or 0),
        currency=(obj.get("currency") or "").lower(),
        customer_id=_id(obj.get("customer")),
        next_payment_attempt=obj.get("next_payment_attempt"),
        credit_applied=_credit_applied(obj),
        hosted_invoice_url=str(obj.get("hosted_invoice_url") or ""),
        created=int(obj.get("created") or obj.get("date") or 0),
        paid_at=(obj.get("status_transitions") or {}).get("paid_at"),
    )


@dataclass(frozen=True)
class SubscriptionFacts:
    id: str
    status: str
    amount: int
    currency: str
    interval: str
    customer_id: str
    metadata: dict[str, str]
    latest_invoice: dict[str, Any] | None
    cancellation_reason: str = ""
    cancellation_comment: str = ""
    # What adopting a subscription made elsewhere needs (stripe_adopt): which price and
    # product it pays, how many intervals between payments, when it started and ended,
    # who pays (when the customer is expanded) and with which card (when expanded).
    interval_count: int = 1
    items_count: int = 1
    price_id: str = ""
    product_id: str = ""
    created: int = 0
    ended_at: int | None = None
    customer_email: str = ""
    customer_name: str = ""
    card_brand: str = ""
    card_last4: str = ""


def subscription_facts(obj: dict[str, Any]) -> SubscriptionFacts:
    items = (obj.get("items") or {}).get("data") or []
    item = items[0] if items else {}
    price = item.get("price") or {}
    plan = item.get("plan") or obj.get("plan") or {}
    amount = price.get("unit_amount")
    interval = (price.get("recurring") or {}).get("interval")
    if amount is None:
        amount = plan.get("amount")
    if not interval:
        interval = plan.get("interval")
    interval_count = (price.get("recurring") or {}).get("interval_count") or plan.get(
        "interval_count"
    )
    quantity = int(item.get("quantity") or 1)
    latest_invoice = obj.get("latest_invoice")
    cancellation = obj.get("cancellation_details") or {}
    expanded = obj.get("customer")
    customer: dict[str, Any] = expanded if isinstance(expanded, dict) else {}
    card_brand, card_last4 = _subscription_card(obj, customer)
    return SubscriptionFacts(
        id=obj["id"],
        status=obj.get("status") or "",
        amount=int(amount or 0) * quantity,
        currency=(
            obj.get("currency") or price.get("currency") or plan.get("currency") or ""
        ).lower(),
        interval=str(interval or ""),
        customer_id=_id(obj.get("customer")),
        metadata=_metadata(obj),
        latest_invoice=latest_invoice if isinstance(latest_invoice, dict) else None,
        # Current shape only; localstripe (2017-08-15) says nothing of why.
        cancellation_reason=str(cancellation.get("reason") or ""),
        cancellation_comment=str(cancellation.get("comment") or ""),
        interval_count=int(interval_count or 1),
        items_count=len(items),
        price_id=_id(price) or _id(plan),
        product_id=_id(price.get("product")) or _id(plan.get("product")),
        created=int(obj.get("start_date") or obj.get("created") or 0),
        ended_at=obj.get("ended_at") or obj.get("canceled_at"),
        customer_email=str(customer.get("email") or ""),
        customer_name=str(customer.get("name") or ""),
        card_brand=card_brand,
        card_last4=card_last4,
    )


# A card source (older integrations, localstripe) names its brand for people; a card
# PaymentMethod, as the rest of the site stores it, by a short code.
_SOURCE_BRANDS = {"american express": "amex", "diners club": "diners", "mastercard": "mastercard"}


def _subscription_card(obj: dict[str, Any], customer: dict[str, Any]) -> tuple[str, str]:
    """(brand, last four) of the card that pays the subscription, where expanded: its own
    default payment method, else its customer's invoice default, else the customer's
    default source (a Card)."""
    candidates = [
        obj.get("default_payment_method"),
        (customer.get("invoice_settings") or {}).get("default_payment_method"),
    ]
    for payment_method in candidates:
        if isinstance(payment_method, dict) and payment_method.get("card"):
            return card_facts(payment_method)
    source = customer.get("default_source")
    if isinstance(source, dict) and source.get("object") == "card":
        brand = str(source.get("brand") or "").lower()
        return _SOURCE_BRANDS.get(brand, brand), str(source.get("last4") or "")
    return "", ""


@dataclass(frozen=True)
class ChargeFacts:
    id: str
    payment_intent_id: str
    invoice_id: str
    amount: int
    amount_refunded: int
    refunded: bool
    currency: str


def charge_facts(obj: dict[str, Any]) -> ChargeFacts:
    return ChargeFacts(
        id=obj["id"],
        payment_intent_id=_id(obj.get("payment_intent")),
        invoice_id=_id(obj.get("invoice")),
        amount=int(obj.get("amount") or 0),
        amount_refunded=int(obj.get("amount_refunded") or 0),
        refunded=bool(obj.get("refunded")),
        currency=(obj.get("currency") or "").lower(),
    )


@dataclass(frozen=True)
class RefundFacts:
    id: str
    charge_id: str
    payment_intent_id: str
    amount: int
    currency: str
    status: str
    failure_reason: str


def refund_facts(obj: dict[str, Any]) -> RefundFacts:
    return RefundFacts(
        id=obj["id"],
        charge_id=_id(obj.get("charge")),
        payment_intent_id=_id(obj.get("payment_intent")),
        amount=int(obj.get("amount") or 0),
        currency=(obj.get("currency") or "").lower(),
        status=str(obj.get("status") or ""),
        failure_reason=str(obj.get("failure_reason") or ""),
    )


@dataclass(frozen=True)
class DisputeFacts:
    id: str
    charge_id: str
    payment_intent_id: str
    reason: str
    status: str = ""
    amount: int = 0


def dispute_facts(obj: dict[str, Any]) -> DisputeFacts:
    return DisputeFacts(
        id=obj["id"],
        charge_id=_id(obj.get("charge")),
        payment_intent_id=_id(obj.get("payment_intent")),
        reason=str(obj.get("reason") or ""),
        status=str(obj.get("status") or ""),
        amount=int(obj.get("amount") or 0),
    )


def card_facts(payment_method: dict[str, Any]) -> tuple[str, str]:
    """(brand, last four) of a card PaymentMethod."""
    card = payment_method.get("card") or {}
    return str(card.get("brand") or ""), str(card.get("last4") or "")
