"""Build Stripe events from the recorded payloads and post them signed with the test
secret, so the webhook's real signature verification runs."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
import uuid
from functools import cache
from pathlib import Path
from typing import Any

import stripe
from django.conf import settings
from django.urls import reverse

FIXTURES = Path(__file__).parent / "fixtures"
CURRENT_API_VERSION = stripe.api_version  # what the pinned SDK speaks


@cache
def _read(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def fixture(name: str) -> dict[str, Any]:
    return copy.deepcopy(_read(name))


def localstripe_object(event_file: str) -> dict[str, Any]:
    """The data.object of a recorded localstripe event (2017-08-15 shape)."""
    return fixture(f"localstripe-{event_file}.json")["data"]["object"]


def current_object(kind: str) -> dict[str, Any]:
    """Stripe's example object of this kind, current shape."""
    return fixture(f"stripe-current-{kind}.json")


def event(type_: str, obj: dict[str, Any], *, api_version: str = CURRENT_API_VERSION) -> dict:
    return {
        "id": f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": api_version,
        "created": int(time.time()),
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": type_,
    }


def sign(payload: str, *, secret: str | None = None, timestamp: int | None = None) -> str:
    timestamp = timestamp or int(time.time())
    secret = secret or settings.STRIPE_WEBHOOK_SECRET
    digest = hmac.new(
        secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256
    ).hexdigest()
    return f"t={timestamp},v1={digest}"


def post_event(client, evt: dict, *, signature: str | None = None):
    payload = json.dumps(evt)
    return client.post(
        reverse("donations:webhook"),
        data=payload,
        content_type="application/json",
        headers={"Stripe-Signature": signature if signature is not None else sign(payload)},
    )


# --- Payloads for our rows ------------------------------------------------------


def payment_intent_succeeded_2017(donation, *, amount: int | None = None) -> dict:
    obj = localstripe_object("payment_intent_succeeded")
    obj.update(
        id=donation.stripe_payment_intent_id or f"pi_{uuid.uuid4().hex[:14]}",
        amount=amount if amount is not None else donation.amount,
        currency=donation.currency,
        customer=donation.stripe_customer_id,
        metadata={"donation_id": str(donation.pk)},
    )
    for charge in obj["charges"]["data"]:
        charge["payment_intent"] = obj["id"]
    return event("payment_intent.succeeded", obj, api_version="2017-08-15")


def payment_intent_succeeded_current(donation, *, amount: int | None = None) -> dict:
    """Current shape: the charge is `latest_charge`, there is no `charges` list."""
    obj = current_object("payment_intent")
    amount = amount if amount is not None else donation.amount
    obj.update(
        id=donation.stripe_payment_intent_id or f"pi_{uuid.uuid4().hex[:14]}",
        amount=amount,
        amount_received=amount,
        currency=donation.currency,
        customer=donation.stripe_customer_id,
        metadata={"donation_id": str(donation.pk)},
        status="succeeded",
        latest_charge=f"ch_{uuid.uuid4().hex[:14]}",
        last_payment_error=None,
    )
    return event("payment_intent.succeeded", obj)


def payment_intent_failed_current(donation) -> dict:
    obj = current_object("payment_intent")
    obj.update(
        id=donation.stripe_payment_intent_id,
        amount=donation.amount,
        currency=donation.currency,
        metadata={"donation_id": str(donation.pk)},
        status="requires_payment_method",
        latest_charge=None,
        last_payment_error={
            "type": "card_error",
            "code": "card_declined",
            "message": "Your card was declined.",
        },
    )
    return event("payment_intent.payment_failed", obj)


def payment_intent_failed_2017(donation) -> dict:
    obj = localstripe_object("payment_intent_payment_failed")
    obj.update(
        id=donation.stripe_payment_intent_id,
        amount=donation.amount,
        currency=donation.currency,
        metadata={"donation_id": str(donation.pk)},
    )
    return event("payment_intent.payment_failed", obj, api_version="2017-08-15")


def invoice_2017(gift, *, invoice_id: str, paid: bool = True, amount: int | None = None) -> dict:
    obj = localstripe_object("invoice_payment_succeeded")
    amount = amount if amount is not None else gift.amount
    obj.update(
        id=invoice_id,
        subscription=gift.stripe_subscription_id,
        customer=gift.stripe_customer_id,
        amount_due=amount,
        amount_paid=amount if paid else 0,
        currency=gift.currency,
        status="paid" if paid else "open",
        payment_intent=f"pi_{invoice_id[3:]}",
        parent={"subscription_details": {"subscription": gift.stripe_subscription_id}},
    )
    type_ = "invoice.payment_succeeded" if paid else "invoice.payment_failed"
    return event(type_, obj, api_version="2017-08-15")


def invoice_current(
    gift, *, invoice_id: str, paid: bool = True, amount: int | None = None, type_: str = ""
) -> dict:
    """A current-shape invoice: the subscription only under parent.subscription_details."""
    obj = current_object("invoice")
    amount = amount if amount is not None else gift.amount
    obj.update(
        id=invoice_id,
        customer=gift.stripe_customer_id,
        amount_due=amount,
        amount_paid=amount if paid else 0,
        amount_remaining=0 if paid else amount,
        currency=gift.currency,
        status="paid" if paid else "open",
        billing_reason="subscription_cycle",
        parent={
            "quote_details": None,
            "subscription_details": {
                "metadata": {"gift_id": str(gift.pk)},
                "subscription": gift.stripe_subscription_id,
            },
            "type": "subscription_details",
        },
    )
    # A current invoice in a webhook names no PaymentIntent, charge or payments: the
    # webhook fetches its InvoicePayments (see stripe_gateway.invoice_payments_fill).
    for absent in ("subscription", "payment_intent", "charge", "payments"):
        obj.pop(absent, None)
    default = "invoice.paid" if paid else "invoice.payment_failed"
    return event(type_ or default, obj)


def subscription_current(
    gift,
    *,
    status: str,
    amount: int | None = None,
    type_: str,
    created: int | None = None,
    cancellation_reason: str | None = None,
    cancellation_comment: str | None = None,
) -> dict:
    obj = current_object("subscription")
    obj.update(
        id=gift.stripe_subscription_id,
        customer=gift.stripe_customer_id,
        status=status,
        currency=gift.currency,
        metadata={"gift_id": str(gift.pk)},
    )
    item = obj["items"]["data"][0]
    item["price"]["unit_amount"] = amount if amount is not None else gift.amount
    item["price"]["currency"] = gift.currency
    item["price"]["recurring"]["interval"] = gift.interval
    item["subscription"] = gift.stripe_subscription_id
    obj["cancellation_details"] = {
        "comment": cancellation_comment,
        "feedback": None,
        "reason": cancellation_reason,
    }
    evt = event(type_, obj)
    if created is not None:
        evt["created"] = created
    return evt


def subscription_2017(gift, *, status: str, type_: str) -> dict:
    obj = localstripe_object("customer_subscription_created")
    obj.update(
        id=gift.stripe_subscription_id,
        customer=gift.stripe_customer_id,
        status=status,
        metadata={"gift_id": str(gift.pk)},
    )
    obj["items"]["data"][0]["plan"]["amount"] = gift.amount
    obj["items"]["data"][0]["plan"]["currency"] = gift.currency
    return event(type_, obj, api_version="2017-08-15")


def charge_refunded_current(donation, *, amount_refunded: int | None = None) -> dict:
    obj = current_object("charge")
    refunded = donation.amount if amount_refunded is None else amount_refunded
    obj.update(
        id=donation.stripe_charge_id or f"ch_{uuid.uuid4().hex[:14]}",
        payment_intent=donation.stripe_payment_intent_id,
        amount=donation.amount,
        amount_captured=donation.amount,
        amount_refunded=refunded,
        refunded=refunded >= donation.amount,
        currency=donation.currency,
    )
    return event("charge.refunded", obj)


def dispute_current(
    donation, *, type_: str = "charge.dispute.created", status: str = "needs_response"
) -> dict:
    obj = current_object("dispute")
    obj.update(
        charge=donation.stripe_charge_id or "ch_unknown",
        payment_intent=donation.stripe_payment_intent_id,
        amount=donation.amount,
        currency=donation.currency,
        status=status,
    )
    return event(type_, obj)


def dispute_created_current(donation) -> dict:
    return dispute_current(donation)


def refund_current(
    donation,
    *,
    refund_id: str,
    status: str,
    amount: int | None = None,
    type_: str = "refund.updated",
    failure_reason: str | None = None,
) -> dict:
    """A refund of the donation's charge (refund.updated, refund.failed and
    charge.refund.updated all carry the Refund object)."""
    obj = current_object("refund")
    obj.update(
        id=refund_id,
        amount=donation.amount if amount is None else amount,
        charge=donation.stripe_charge_id,
        payment_intent=donation.stripe_payment_intent_id,
        currency=donation.currency,
        status=status,
        failure_reason=failure_reason if status == "failed" else None,
    )
    return event(type_, obj)


# --- Bank debits (SEPA Direct Debit): processing, then succeeded or failed ---------


def sepa_charge_current(
    *, payment_intent_id: str, amount: int, currency: str, mandate: str = "mandate_1SepaTest"
) -> dict:
    """A SEPA debit's charge as Stripe describes it (Charge.PaymentMethodDetails.SepaDebit):
    pending while the debit is processing, with its mandate."""
    obj = current_object("charge")
    obj.update(
        id=f"ch_{uuid.uuid4().hex[:14]}",
        payment_intent=payment_intent_id,
        amount=amount,
        amount_captured=amount,
        currency=currency,
        status="pending",
        paid=False,
        payment_method_details={
            "type": "sepa_debit",
            "sepa_debit": {
                "bank_code": "37040044",
                "branch_code": None,
                "country": "DE",
                "fingerprint": "Fp1SepaTest",
                "last4": "3000",
                "mandate": mandate,
            },
        },
    )
    return obj


def payment_intent_processing_current(donation, *, charge: dict | str | None) -> dict:
    """Current shape: a webhook names the charge by id (`charge` a str); a PaymentIntent
    read with `expand=latest_charge` carries it whole (`charge` a dict)."""
    obj = current_object("payment_intent")
    obj.update(
        id=donation.stripe_payment_intent_id or f"pi_{uuid.uuid4().hex[:14]}",
        amount=donation.amount,
        amount_received=0,
        currency=donation.currency,
        customer=donation.stripe_customer_id,
        metadata={"donation_id": str(donation.pk)} if donation.gift_id is None else {},
        status="processing",
        latest_charge=charge,
        last_payment_error=None,
        payment_method_types=["card", "sepa_debit"],
    )
    return event("payment_intent.processing", obj)


def payment_intent_processing_2017(donation) -> dict:
    """localstripe's 2017-08-15 shape: the charges listed on the PaymentIntent."""
    obj = localstripe_object("payment_intent_succeeded")
    obj.update(
        id=donation.stripe_payment_intent_id or f"pi_{uuid.uuid4().hex[:14]}",
        amount=donation.amount,
        currency=donation.currency,
        customer=donation.stripe_customer_id,
        metadata={"donation_id": str(donation.pk)},
        status="processing",
    )
    for charge in obj["charges"]["data"]:
        charge.update(payment_intent=obj["id"], status="pending", paid=False)
    return event("payment_intent.processing", obj, api_version="2017-08-15")


def payment_intent_debit_failed_current(donation) -> dict:
    """A SEPA debit refused by the donor's bank days later."""
    evt = payment_intent_failed_current(donation)
    evt["data"]["object"]["last_payment_error"] = {
        "type": "invalid_request_error",
        "code": "insufficient_funds",
        "message": "The customer's account has insufficient funds to cover this payment.",
    }
    return evt
