"""What localstripe lacks for the Payment Element flow, added before its server starts.

Development and the browser tests only (`outlet.core.localstripe_server` calls `install()`).
Real Stripe.js confirms a PaymentIntent the server created without a payment method
("deferred intent creation") by posting the method's details with the intent's client
secret and the publishable key; a subscription created with
`payment_behavior=default_incomplete` waits, unpaid, for the browser to confirm its first
invoice's PaymentIntent. localstripe 1.15 refuses both (`confirm` with a payment method is
"Not implemented", and a subscription pays from the customer's default card at once), so:

- `POST /v1/payment_intents/{id}/confirm` takes `client_secret` with the publishable key,
  and `payment_method` or `payment_method_data` (a card: 3-D Secure, declines and all the
  test cards behave as localstripe makes them), plus Stripe.js's `return_url` (ignored);
  a PaymentIntent whose last charge was declined can be confirmed again with another card,
  as on Stripe;
- `subscriptions.create` takes `payment_behavior=default_incomplete` and
  `payment_settings`: the first invoice gets a PaymentIntent with no payment method, the
  subscription stays `incomplete` until it is paid; with
  `save_default_payment_method=on_subscription` the card that pays it becomes the
  customer's invoice default, since localstripe's renewals charge only that;
- a SEPA Direct Debit charge stays `pending` (its PaymentIntent `processing`), as a bank
  debit does on Stripe for days; localstripe would call it paid at once and succeed or fail
  half a second later. Its outcome is Stripe's signed `payment_intent.succeeded` or
  `payment_intent.payment_failed`, which the browser tests post themselves.

The shim (outlet/static/js/stripe-elements-shim.js) is what calls these from the page.
"""

from __future__ import annotations

import re
from typing import Any

from localstripe import resources
from localstripe.errors import UserError

_PUBLISHABLE_CONFIRM = re.compile(r"^/v1/payment_intents/\w+/confirm$")
_deferring = {"on": False}


def _payment_intent_confirm(
    cls: Any,
    id: str,
    payment_method: str | None = None,
    payment_method_data: dict | None = None,
    client_secret: str | None = None,
    return_url: str | None = None,
    use_stripe_sdk: Any = None,
    **kwargs: Any,
) -> Any:
    if kwargs:
        raise UserError(400, "Unexpected " + ", ".join(kwargs.keys()))
    if not (isinstance(id, str) and id.startswith("pi_")):
        raise UserError(400, "Bad request")
    obj = cls._api_retrieve(id)
    if client_secret is not None and client_secret != obj.client_secret:
        raise UserError(401, "Unauthorized")
    if payment_method_data is not None:
        if not isinstance(payment_method_data, dict):
            raise UserError(400, "Bad request")
        payment_method = resources.PaymentMethod(**payment_method_data).id
    if payment_method is not None:
        method = resources.PaymentMethod._api_retrieve(payment_method)
        if obj.status not in ("requires_payment_method", "requires_confirmation"):
            raise UserError(400, "Bad request")
        if obj.latest_charge is not None and obj.latest_charge.status == "failed":
            obj.latest_charge = None  # a declined attempt: Stripe lets the reader try again
        obj.payment_method = method.id
        obj._authentication_failed = False
    if obj.status != "requires_confirmation":
        raise UserError(400, "Bad request")
    obj._confirm(on_failure_now=obj._report_failure)
    return obj


def _subscription_init(original: Any) -> Any:
    def init(
        self: Any,
        *args: Any,
        payment_behavior: str = "allow_incomplete",
        payment_settings: dict | None = None,
        **kwargs: Any,
    ) -> None:
        deferred = payment_behavior == "default_incomplete"
        save = (payment_settings or {}).get("save_default_payment_method") == "on_subscription"
        self._outlet_save_default = save
        _deferring["on"] = deferred
        try:
            original(
                self,
                *args,
                payment_behavior="allow_incomplete" if deferred else payment_behavior,
                **kwargs,
            )
        finally:
            _deferring["on"] = False

    return init


def _subscription_create_invoice(original: Any) -> Any:
    def create_invoice(self: Any) -> None:
        if not _deferring["on"]:
            original(self)
            return
        pending = [
            item
            for item in resources.InvoiceItem._api_list_all(
                None, customer=self.customer, limit=99
            )._list
            if item.invoice is None
        ]
        invoice = resources.Invoice(
            customer=self.customer,
            subscription=self.id,
            items=pending + list(self.items._list),
            tax_percent=self.tax_percent,
            default_tax_rates=[rate.id for rate in (self.default_tax_rates or [])],
            date=self.current_period_start,
        )
        invoice._finalize()
        if invoice.status == "paid":  # nothing to pay
            self.status = "active"
            return
        payment_intent = resources.PaymentIntent(
            amount=invoice.total, currency=invoice.currency, customer=self.customer
        )
        payment_intent.invoice = invoice.id
        invoice.payment_intent = payment_intent.id

    return create_invoice


def _payment_intent_on_success(original: Any) -> Any:
    def on_success(self: Any) -> None:
        if self.invoice:
            invoice = resources.Invoice._api_retrieve(self.invoice)
            if invoice.subscription:
                subscription = resources.Subscription._api_retrieve(invoice.subscription)
                if getattr(subscription, "_outlet_save_default", False):
                    customer = resources.Customer._api_retrieve(self.customer)
                    customer.invoice_settings = {
                        **(customer.invoice_settings or {}),
                        "default_payment_method": self.payment_method,
                    }
        original(self)

    return on_success


def _charge_initialize(original: Any) -> Any:
    def initialize(
        self: Any, on_success: Any = None, on_failure_now: Any = None, on_failure_later: Any = None
    ) -> None:
        if self._is_async_payment_method():
            self.status = "pending"  # a bank debit: the outcome comes days later
            return
        original(self, on_success, on_failure_now, on_failure_later)

    return initialize


def publishable_key_allowed(method: str, path: str, data: Any) -> bool:
    """Whether this request may be made with the publishable key (as Stripe.js does)."""
    return (
        method == "POST"
        and bool(_PUBLISHABLE_CONFIRM.match(path))
        and isinstance(data, dict)
        and str(data.get("key", "")).startswith("pk_")
        and bool(data.get("client_secret"))
    )


def install() -> None:
    """Patch localstripe's resources; call before `localstripe.server` is imported (it
    binds its routes to these functions at import)."""
    confirm = classmethod(_payment_intent_confirm)
    resources.PaymentIntent._api_confirm = confirm
    resources.extra_apis[:] = [
        (method, url, resources.PaymentIntent._api_confirm)
        if url == "/v1/payment_intents/{id}/confirm"
        else (method, url, func)
        for method, url, func in resources.extra_apis
    ]
    resources.Subscription.__init__ = _subscription_init(resources.Subscription.__init__)
    resources.Subscription._create_invoice = _subscription_create_invoice(
        resources.Subscription._create_invoice
    )
    resources.PaymentIntent._on_success = _payment_intent_on_success(
        resources.PaymentIntent._on_success
    )
    resources.Charge._initialize_charge = _charge_initialize(resources.Charge._initialize_charge)
