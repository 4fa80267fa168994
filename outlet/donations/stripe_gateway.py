"""
The one door to Stripe. Every call to Stripe (or to localstripe in development)
goes through this module, with one configured client on STRIPE_API_BASE and an
idempotency key on every create.

Every call speaks the API version the pinned SDK sends by default (`stripe.api_version`);
nothing downgrades it per call. localstripe answers in the 2017-08-15 dialect and refuses
some current parameters, so where the two differ the request is chosen here, by the
explicit STRIPE_DIALECT setting (`_is_localstripe()`), and nowhere else; the responses'
differences are read in `stripe_objects.py`. tests/donations/test_stripe_contract.py
checks every current-API request against the SDK's own typed params.

Functions return plain dicts (`StripeObject.to_dict()`), so the rest of the app
reads Stripe data the same way whether it came from an API call or a webhook,
through `stripe_objects.py`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import requests
import stripe
from django.conf import settings
from django.urls import reverse

LOCALSTRIPE_WEBHOOK_ID = "outlet"

StripeError = stripe.StripeError
CardError = stripe.CardError
# Stripe refused the request as malformed (HTTP 400): nothing was created or charged.
InvalidRequestError = stripe.InvalidRequestError
SignatureVerificationError = stripe.SignatureVerificationError


# The HTTP transport the SDK sends through; None is the SDK's own. The contract test puts a
# stub here that records every request and checks it against the SDK's typed params.
TRANSPORT: Any = None


def _client() -> stripe.StripeClient:
    # Built per call (cheap) so tests that move STRIPE_API_BASE take effect at once.
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        base_addresses={"api": settings.STRIPE_API_BASE},
        max_network_retries=2,
        http_client=TRANSPORT,
    )


def _is_localstripe() -> bool:
    return settings.STRIPE_DIALECT == "localstripe"


def _plain(obj: Any) -> dict[str, Any]:
    return obj.to_dict()


def localstripe_webhook_register(*, site_url: str) -> None:
    """Point localstripe's webhooks at our endpoint, signed with our secret.

    Only for localstripe (development and tests): real Stripe's endpoints are set
    in its dashboard.
    """
    response = requests.post(
        f"{settings.STRIPE_API_BASE}/_config/webhooks/{LOCALSTRIPE_WEBHOOK_ID}",
        data={
            "url": site_url.rstrip("/") + reverse("donations:webhook"),
            "secret": settings.STRIPE_WEBHOOK_SECRET,
        },
        timeout=10,
    )
    response.raise_for_status()


def event_construct(*, payload: bytes, signature: str) -> dict[str, Any]:
    """Verify a webhook's signature on the raw body and return the event as plain data;
    raise ValueError or stripe.SignatureVerificationError when it is not Stripe's.

    This is `stripe.Webhook.construct_event` without its last step: the same
    `WebhookSignature.verify_header` (HMAC-SHA256 over "timestamp.body", constant-time
    compare, 5-minute tolerance against replays), then `json.loads`. Building a tree of
    StripeObjects only to turn it back into dicts cost more than the rest of a webhook's
    Python work (see benchmarks/webhooks.py)."""
    text = payload.decode("utf-8")
    stripe.WebhookSignature.verify_header(
        text, signature, settings.STRIPE_WEBHOOK_SECRET, stripe.Webhook.DEFAULT_TOLERANCE
    )
    event = json.loads(text)
    if not isinstance(event, dict):
        raise ValueError("A Stripe event is a JSON object.")
    return event


def customer_create(*, email: str, name: str, idempotency_key: str) -> dict[str, Any]:
    return _plain(
        _client().v1.customers.create(
            params={"email": email, "name": name}, options={"idempotency_key": idempotency_key}
        )
    )


def setup_intent_retrieve(*, setup_intent_id: str) -> dict[str, Any]:
    return _plain(_client().v1.setup_intents.retrieve(setup_intent_id))


def payment_method_retrieve(*, payment_method_id: str) -> dict[str, Any]:
    return _plain(_client().v1.payment_methods.retrieve(payment_method_id))


def payment_intent_retrieve(*, payment_intent_id: str) -> dict[str, Any]:
    return _plain(_client().v1.payment_intents.retrieve(payment_intent_id))


def customer_default_card_set(*, customer_id: str, payment_method_id: str) -> None:
    _client().v1.customers.update(
        customer_id, params={"invoice_settings": {"default_payment_method": payment_method_id}}
    )


def plan_ensure(*, amount: int, currency: str, interval: str) -> str:
    """The id of the Plan for this amount, currency and interval, created on first use.

    Plans (not Prices) because localstripe serves only Plans; real Stripe serves both."""
    plan_id = f"outlet-gift-{currency}-{amount}-{interval}"
    client = _client()
    try:
        client.v1.plans.retrieve(plan_id)
        return plan_id
    except stripe.InvalidRequestError:
        pass
    try:
        client.v1.plans.create(
            params={
                "id": plan_id,
                "amount": amount,
                "currency": currency,
                "interval": interval,
                "product": {"name": f"{settings.OUTLET_NAME} {interval}ly gift"},
            },
            options={"idempotency_key": f"plan-{plan_id}"},
        )
    except stripe.StripeError:
        # Another request created it meanwhile (409 on localstripe); it exists now.
        client.v1.plans.retrieve(plan_id)
    return plan_id


def subscription_retrieve(*, subscription_id: str) -> dict[str, Any]:
    return _plain(_client().v1.subscriptions.retrieve(subscription_id))


def subscription_cancel(*, subscription_id: str, comment: str = "") -> dict[str, Any]:
    """Cancel now. The comment travels in Stripe's cancellation_details (so its
    customer.subscription.deleted says who cancelled); localstripe does not take it."""
    params: Any = {}
    if comment and not _is_localstripe():
        params["cancellation_details"] = {"comment": comment}
    return _plain(_client().v1.subscriptions.cancel(subscription_id, params=params))


def subscription_default_card_set(*, subscription_id: str, payment_method_id: str) -> None:
    """Renewals charge the customer's default card; real Stripe also honours a
    subscription-level default, which localstripe does not accept, so set it only there."""
    if not _is_localstripe():
        _client().v1.subscriptions.update(
            subscription_id, params={"default_payment_method": payment_method_id}
        )


def invoice_retrieve(*, invoice_id: str) -> dict[str, Any]:
    """The invoice, with its payments (each PaymentIntent expanded) when Stripe keeps them
    apart (see invoice_payments_fill)."""
    return invoice_payments_fill(invoice=_plain(_client().v1.invoices.retrieve(invoice_id)))


def invoice_payments_fill(*, invoice: dict[str, Any]) -> dict[str, Any]:
    """The invoice with `payments` filled in, each PaymentIntent expanded (so its charge is
    known), fetched when the invoice does not carry them: a current invoice, in a webhook
    or an API answer, has no `payment_intent` and lists no payments unless asked.
    localstripe's invoices carry `payment_intent` and `charge` themselves: unchanged."""
    if invoice.get("payment_intent") or _is_localstripe():
        return invoice
    listed = (invoice.get("payments") or {}).get("data") or []
    if listed and all(
        isinstance((item.get("payment") or {}).get("payment_intent"), dict) for item in listed
    ):
        return invoice
    payments = _client().v1.invoice_payments.list(
        params={"invoice": invoice["id"], "expand": ["data.payment.payment_intent"]}
    )
    return {**invoice, "payments": _plain(payments)}


def invoice_id_for_payment_intent(*, payment_intent_id: str) -> str:
    """The id of the invoice a PaymentIntent paid, "" when it paid none (a one-time gift, or
    not ours). Current Stripe ties them only through InvoicePayments; localstripe's
    PaymentIntent names its invoice."""
    if _is_localstripe():
        return str(
            payment_intent_retrieve(payment_intent_id=payment_intent_id).get("invoice") or ""
        )
    payments = _client().v1.invoice_payments.list(
        params={
            "payment": {"type": "payment_intent", "payment_intent": payment_intent_id},
            "limit": 1,
        }
    )
    listed = _plain(payments).get("data") or []
    return str(listed[0].get("invoice") or "") if listed else ""


def charge_retrieve(*, charge_id: str) -> dict[str, Any]:
    return _plain(_client().v1.charges.retrieve(charge_id))


def refund_create(*, payment_intent_id: str, idempotency_key: str) -> dict[str, Any]:
    return _plain(
        _client().v1.refunds.create(
            params={"payment_intent": payment_intent_id},
            options={"idempotency_key": idempotency_key},
        )
    )


# --- Reading the account's existing subscriptions (stripe_adopt) ---------------------------
# Read-only: lists only, never a create or an update, so adopting another system's donors
# cannot charge, change or duplicate anything at Stripe.

_ADOPT_PAGE = 100  # Stripe's largest page


def subscriptions_list_all() -> Iterator[dict[str, Any]]:
    """Every subscription of the account, whatever its status (`status=all`: Stripe leaves
    cancelled ones out otherwise), page after page. Each comes with its customer (email,
    name) and the card that pays it expanded, so a donor and their card are known without
    a call per subscription: the subscription's default payment method, else the
    customer's invoice default (current Stripe), else the customer's default source
    (localstripe and older integrations)."""
    expand = [
        "data.customer",
        "data.customer.invoice_settings.default_payment_method",
        "data.customer.default_source",
    ]
    if not _is_localstripe():  # localstripe's subscriptions have no payment method of their own
        expand.append("data.default_payment_method")
    params: Any = {"status": "all", "limit": _ADOPT_PAGE, "expand": expand}
    for subscription in _client().v1.subscriptions.list(params=params).auto_paging_iter():
        yield _plain(subscription)


def invoices_paid_list(*, subscription_id: str) -> Iterator[dict[str, Any]]:
    """The subscription's paid invoices (localstripe: all of them), page after page: its
    donation history. Current
    Stripe lists an invoice's payments (their PaymentIntents) only when asked, so they are
    included here, and a later refund or dispute of one finds its donation."""
    params: Any = {"subscription": subscription_id, "limit": _ADOPT_PAGE}
    if not _is_localstripe():  # localstripe refuses both; the caller keeps the paid ones
        params.update(status="paid", expand=["data.payments"])
    for invoice in _client().v1.invoices.list(params=params).auto_paging_iter():
        yield _plain(invoice)


def charges_list(*, customer_id: str) -> Iterator[dict[str, Any]]:
    """The customer's charges, page after page: what was refunded of the history before the
    move (an invoice says it was paid, not that its payment was refunded since)."""
    params: Any = {"customer": customer_id, "limit": _ADOPT_PAGE}
    for charge in _client().v1.charges.list(params=params).auto_paging_iter():
        yield _plain(charge)


# --- The Payment Element: intents created when the reader submits (deferred) ---------------
# The page mounts Stripe's Payment Element knowing only the amount, currency and frequency;
# these create the PaymentIntent, the Subscription (its first invoice's PaymentIntent) or
# the SetupIntent the browser then confirms with `confirmPayment`/`confirmSetup`.

GIFT_PRODUCT_ID = "outlet-gift"


def payment_methods_offered() -> dict[str, Any]:
    """Which methods an intent may be paid with: the allow-list setting when set, else the
    dashboard's payment method configuration when named, else whatever the dashboard
    switches on (automatic payment methods). localstripe takes cards only."""
    if _is_localstripe():
        return {"payment_method_types": ["card"]}
    if settings.DONATION_PAYMENT_METHOD_TYPES:
        # The pinned API's name for an intent's allow-list (payment_method_types is older).
        return {"allowed_payment_method_types": list(settings.DONATION_PAYMENT_METHOD_TYPES)}
    offered: dict[str, Any] = {"automatic_payment_methods": {"enabled": True}}
    if settings.STRIPE_PAYMENT_METHOD_CONFIGURATION:
        offered["payment_method_configuration"] = settings.STRIPE_PAYMENT_METHOD_CONFIGURATION
    return offered


def payment_intent_create_deferred(
    *,
    amount: int,
    currency: str,
    customer_id: str,
    metadata: dict[str, str],
    description: str,
    idempotency_key: str,
) -> dict[str, Any]:
    """A one-time gift's PaymentIntent, unconfirmed: the browser confirms it with the
    method the reader chose in the Payment Element (`confirmPayment`)."""
    params: Any = {
        "amount": amount,
        "currency": currency,
        "customer": customer_id,
        "metadata": metadata,
        **payment_methods_offered(),
    }
    if not _is_localstripe():  # localstripe refuses a description
        params["description"] = description
    return _plain(
        _client().v1.payment_intents.create(
            params=params, options={"idempotency_key": idempotency_key}
        )
    )


def gift_product_ensure() -> str:
    """The id of the one Product every recurring gift's inline price belongs to, created on
    first use (a subscription item's `price_data` names a product; it cannot create one)."""
    client = _client()
    try:
        client.v1.products.retrieve(GIFT_PRODUCT_ID)
        return GIFT_PRODUCT_ID
    except stripe.InvalidRequestError:
        pass
    try:
        client.v1.products.create(
            params={"id": GIFT_PRODUCT_ID, "name": f"{settings.OUTLET_NAME} gift"},
            options={"idempotency_key": f"product-{GIFT_PRODUCT_ID}"},
        )
    except stripe.StripeError:
        client.v1.products.retrieve(GIFT_PRODUCT_ID)  # created meanwhile
    return GIFT_PRODUCT_ID


def subscription_create_deferred(
    *,
    customer_id: str,
    amount: int,
    currency: str,
    interval: str,
    metadata: dict[str, str],
    idempotency_key: str,
) -> dict[str, Any]:
    """A recurring gift, incomplete until the browser confirms its first invoice's payment
    with the method chosen in the Payment Element; that method then pays the renewals
    (`save_default_payment_method=on_subscription`).

    Current Stripe: the price is inline (`price_data` on the gift Product), since Plans are
    legacy and a Price per amount would only pile up; the browser gets
    `latest_invoice.confirmation_secret`. localstripe serves Plans only, and names the
    invoice's PaymentIntent (`latest_invoice.payment_intent`); outlet.core.
    localstripe_elements teaches it `default_incomplete`."""
    params: Any = {
        "customer": customer_id,
        "metadata": metadata,
        "payment_behavior": "default_incomplete",
        "payment_settings": {"save_default_payment_method": "on_subscription"},
    }
    if _is_localstripe():
        plan_id = plan_ensure(amount=amount, currency=currency, interval=interval)
        params["items"] = [{"plan": plan_id}]
        params["expand"] = ["latest_invoice.payment_intent"]
    else:
        params["items"] = [
            {
                "price_data": {
                    "currency": currency,
                    "unit_amount": amount,
                    "recurring": {"interval": interval},
                    "product": gift_product_ensure(),
                }
            }
        ]
        if settings.DONATION_PAYMENT_METHOD_TYPES:
            params["payment_settings"]["payment_method_types"] = list(
                settings.DONATION_PAYMENT_METHOD_TYPES
            )
        # The pinned API takes no payment method configuration here: without an allow-list
        # the invoice offers what the dashboard's invoice settings switch on.
        params["expand"] = ["latest_invoice.confirmation_secret"]
    return _plain(
        _client().v1.subscriptions.create(
            params=params, options={"idempotency_key": idempotency_key}
        )
    )


def setup_intent_create_deferred(*, customer_id: str, idempotency_key: str) -> dict[str, Any]:
    """A SetupIntent for the Payment Element in setup mode (a donor's new card or other
    reusable method), confirmed by the browser (`confirmSetup`)."""
    params: Any = {"customer": customer_id, "usage": "off_session", **payment_methods_offered()}
    return _plain(
        _client().v1.setup_intents.create(
            params=params, options={"idempotency_key": idempotency_key}
        )
    )


def events_list(*, created_gte: int) -> Iterator[dict[str, Any]]:
    """Every event of the account created at or after `created_gte` (epoch seconds), page
    after page, in the order Stripe lists them (newest first; localstripe: oldest first).
    Read-only: a restore replays them through the webhook's apply path (stripe_events_replay in
    donations/event_replay.py). Stripe keeps events for 30 days."""
    params: Any = {"created": {"gte": created_gte}, "limit": _ADOPT_PAGE}
    for event in _client().v1.events.list(params=params).auto_paging_iter():
        yield _plain(event)


def payment_intent_retrieve_with_charge(*, payment_intent_id: str) -> dict[str, Any]:
    """The PaymentIntent with its latest charge expanded: how it was paid
    (`payment_method_details`, a SEPA debit's mandate). localstripe's 2017 shape lists
    its charges on the PaymentIntent already."""
    if _is_localstripe():
        return payment_intent_retrieve(payment_intent_id=payment_intent_id)
    return _plain(
        _client().v1.payment_intents.retrieve(
            payment_intent_id, params={"expand": ["latest_charge"]}
        )
    )


def customer_update(*, customer_id: str, email: str, name: str) -> dict[str, Any]:
    """Set the Stripe customer's email and name to ours; empty strings clear them (an
    erasure). The same values sent twice change nothing, so a retried task is harmless."""
    return _plain(_client().v1.customers.update(customer_id, params={"email": email, "name": name}))


# Worth trying again later: Stripe unreachable, its servers failing (5xx) or asking us to
# slow down (429). Any other refusal (400, 401, 403, 404) would be refused again.
TEMPORARY_ERRORS: tuple[type[stripe.StripeError], ...] = (
    stripe.APIConnectionError,
    stripe.APIError,
    stripe.RateLimitError,
)


# --- Abandoned checkouts and gift amounts (deferred intents) -------------------------------


def payment_intent_cancel(*, payment_intent_id: str, idempotency_key: str) -> dict[str, Any]:
    """Cancel an unconfirmed PaymentIntent (an abandoned checkout's), so a late confirm from
    an old tab can never charge it. Idempotent: one already cancelled is answered as it is.
    Stripe refuses (InvalidRequestError) one that succeeded or is processing meanwhile; the
    caller reads it again and leaves that money to the payment path."""
    client = _client()
    # localstripe refuses a cancellation_reason.
    params: Any = {} if _is_localstripe() else {"cancellation_reason": "abandoned"}
    try:
        return _plain(
            client.v1.payment_intents.cancel(
                payment_intent_id,
                params=params,
                options={"idempotency_key": idempotency_key},
            )
        )
    except stripe.InvalidRequestError:
        current = _plain(client.v1.payment_intents.retrieve(payment_intent_id))
        if current.get("status") == "canceled":
            return current
        raise


def subscription_amount_change(
    *, subscription_id: str, amount: int, currency: str, interval: str
) -> dict[str, Any]:
    """The subscription's one item charges `amount` from the next renewal on, without
    proration. Current Stripe: an inline price (`price_data` on the gift Product), as the
    gift was created with, so no Plan or Price piles up per amount. localstripe serves Plans
    only (and the older `prorate` flag), so there the item moves to the amount's Plan."""
    client = _client()
    subscription = _plain(client.v1.subscriptions.retrieve(subscription_id))
    item_id = subscription["items"]["data"][0]["id"]
    params: Any
    if _is_localstripe():
        plan_id = plan_ensure(amount=amount, currency=currency, interval=interval)
        params = {"items": [{"id": item_id, "plan": plan_id}], "prorate": False}
    else:
        price_data = {
            "currency": currency,
            "unit_amount": amount,
            "recurring": {"interval": interval},
            "product": gift_product_ensure(),
        }
        params = {
            "items": [{"id": item_id, "price_data": price_data}],
            "proration_behavior": "none",
        }
    return _plain(client.v1.subscriptions.update(subscription_id, params=params))
