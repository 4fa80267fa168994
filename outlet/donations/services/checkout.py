"""
Checkout: a reader gives once or starts a recurring gift.

`checkout_donation_record` records a pending donation (and gift) before Stripe is called
(payment_element.py then creates the payment the browser confirms); `checkout_refresh`
reads the payment from Stripe after the browser's confirmation. The browser's word is
never taken for a payment, and once Stripe says a payment succeeded nothing after it makes
the answer an error.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext, gettext_noop

from outlet.core.addresses import email_digest, email_normalise
from outlet.core.logs.context import log_context_from
from outlet.core.ratelimits import rate_limit_client, rate_limit_hit

from .. import stripe_gateway
from ..currencies import amount_is_valid, currency_rule
from ..models import Campaign, Donation, Donor, Frequency, Gift
from ..stripe_objects import (
    PaymentIntentFacts,
    card_facts,
    invoice_facts,
    payment_intent_facts,
    subscription_facts,
)
from .stripe_events import (
    DECLINE_MESSAGE,
    donation_fail,
    gift_end,
    invoice_apply,
    payment_intent_apply,
    subscription_apply,
)

logger = logging.getLogger(__name__)

# Messages readers see. Marked with gettext_noop: the English text is what a donation's
# failure_message keeps (one language in the database), and each is translated where it
# is shown (views, thanks.html, ValidationError at the raise).
AUTHENTICATION_MESSAGE = gettext_noop(
    "Your bank could not confirm this payment. Please try again or use another card; "
    "nothing was charged."
)
# Once a charge may have been made, never say "nothing was charged", nor promise what a
# retry will do: the browser answers `uncertain` by asking again about this same charge
# (same token, same idempotency key), never by starting a new checkout.
UNCERTAIN_MESSAGE = gettext_noop(
    "We could not confirm your payment with our processor yet. Please do not start a new "
    "donation: we are checking again. If it went through, your receipt is on its way by email."
)
NEWSLETTER_CONSENT = "Send me the newsletter (we'll ask you to confirm)"
REFUSED_MESSAGE = gettext_noop(
    "Our payment processor could not accept these details, so nothing was charged. Please "
    "check them (your email address and the card's number and expiry date) and try again."
)
GENERIC_STRIPE_MESSAGE = gettext_noop(
    "We could not reach our payment processor. Nothing was charged; please try again in a minute."
)


# --- Amounts and limits --------------------------------------------------------


def donation_fee_compute(*, amount: int, currency: str = "") -> int:
    """The fee that, added to `amount`, leaves `amount` after the processor's cut
    (DONATION_FEE_PERCENT % of the total plus DONATION_FEE_FIXED), rounded up so that the
    total is an amount the currency can charge (whole krónur, dinars in steps of 0.010).
    donate.js computes the same figure for the page."""
    step = currency_rule(currency or settings.DONATION_CURRENCY).step
    percent = settings.DONATION_FEE_PERCENT / 100
    total = math.ceil((amount + settings.DONATION_FEE_FIXED) / (1 - percent))
    total = math.ceil(total / step) * step
    return total - amount


def payment_attempt_register(*, ip: str, email: str, purpose: str = "payment") -> None:
    """Count an attempt; raise ValidationError past the per-IP or per-email limit.

    Fixed windows in Django's cache: cheap, shared by every web process when the cache is
    Redis, and enough to stop card testing from one address or for one email. Each purpose
    counts apart, so asking for manage links never blocks giving."""
    window = settings.DONATION_RATE_LIMIT_WINDOW
    email_key = email_digest(email)
    limits = [
        (f"donations:{purpose}:ip:{rate_limit_client(ip)}", settings.DONATION_RATE_LIMIT_PER_IP),
        (f"donations:{purpose}:email:{email_key}", settings.DONATION_RATE_LIMIT_PER_EMAIL),
    ]
    if purpose == "payment":
        message = gettext(
            "Too many payment attempts. Please wait an hour and try again, or write to us."
        )
    else:
        message = gettext("Too many requests. Please wait an hour and try again, or write to us.")
    for key, limit in limits:
        if not rate_limit_hit(key, limit=limit, window=window):
            raise ValidationError(message, code="rate_limited")


# --- Newsletter opt-in --------------------------------------------------------


def newsletter_opt_in_forward(*, donation: Donation, consent_text: str, ip: str = "") -> None:
    """Hand a donor's newsletter opt-in to the newsletters app, which records a pending
    subscription and sends its own double opt-in confirmation; called when the donation
    is recorded as paid, never before (an unpaid checkout, with anyone's address, must
    subscribe nobody). The opt-in also stays on the donation (`newsletter_opt_in`). A
    refusal there (a suppressed address, no newsletter to offer) never blocks the gift,
    and rolls back only its own writes."""
    if not donation.newsletter_opt_in or not donation.donor.email:
        return
    from outlet.newsletters.services import subscriber_signup

    try:
        with transaction.atomic():
            subscriber_signup(
                email=donation.donor.email,
                source=f"donation:{donation.pk}",
                name=donation.donor.name,
                consent_text=consent_text,
                ip=ip or None,
                language=donation.donor.language,
            )
    except ValidationError as exc:
        logger.info("Newsletter opt-in of donation %s not recorded: %s", donation.pk, exc)


# --- Checkout -----------------------------------------------------------------


def idempotency_key(row: Donation | Gift, purpose: str) -> str:
    """Stable for retries of one operation on one row, never reused by another database
    (a development reset restarts ids at 1; Stripe keeps keys for 24 hours)."""
    created = int(row.created_at.timestamp() * 1_000_000)
    return f"outlet-{row._meta.model_name}-{row.pk}-{created}-{purpose}"


@dataclass(frozen=True)
class CheckoutStep:
    """What the browser does next: `confirm` (confirmPayment with client_secret),
    `authenticate` (the payment still waits for the reader's bank), `done`, `failed`
    (nothing was charged; a new checkout may start) or `uncertain` (a charge may exist: ask
    again about this one, never start another)."""

    action: str
    donation: Donation
    client_secret: str = ""
    message: str = ""


def checkout_donation_record(
    *,
    email: str,
    name: str,
    amount: int,
    cover_fee: bool,
    frequency: str,
    campaign: Campaign | None = None,
    source: str = "",
    utm: dict[str, str] | None = None,
    public_credit: bool = False,
    public_name: str = "",
    newsletter_opt_in: bool = False,
    ip: str = "",
    checkout_key: str = "",
    language: str = "",
) -> tuple[Donation, bool]:
    """Record a pending donation (and its gift, when recurring); (donation, True), or the
    donation of an earlier submit of this browser checkout (same `checkout_key`) and False.

    The rows are committed before Stripe is called: a webhook that arrives before the
    request ends finds them (by the ids in the metadata). A new donor's emails go out in
    `language`, the donate page's."""
    if checkout_key:
        existing = Donation.objects.filter(checkout_key=checkout_key).first()
        if existing is not None:
            return existing, False
    if not settings.DONATION_MIN_AMOUNT <= amount <= settings.DONATION_MAX_AMOUNT:
        raise ValidationError(gettext("Please choose an amount within the limits shown."))
    if not amount_is_valid(amount=amount, currency=settings.DONATION_CURRENCY):
        raise ValidationError(gettext("Please choose an amount this currency can be charged in."))
    if frequency not in Frequency.values:
        raise ValidationError(gettext("Please choose how often to give."))
    payment_attempt_register(ip=ip, email=email)
    fee = donation_fee_compute(amount=amount) if cover_fee else 0
    currency = settings.DONATION_CURRENCY
    attribution: dict[str, Any] = {
        "campaign": campaign,
        "source": source[:200],
        "utm": utm or {},
        "public_credit": public_credit,
        "public_name": (public_name or name)[:200] if public_credit else "",
        "newsletter_opt_in": newsletter_opt_in,
    }
    try:
        with transaction.atomic():
            # An existing donor's name and language are left alone: anyone can type any
            # address into the form, so an unpaid checkout must not change someone else's
            # donor record.
            donor, _ = Donor.objects.get_or_create(
                email=email_normalise(email), defaults={"name": name, "language": language}
            )
            gift = None
            if frequency != Frequency.ONCE:
                gift = Gift.objects.create(
                    donor=donor,
                    amount=amount + fee,
                    currency=currency,
                    interval=frequency,
                    **attribution,
                )
            donation = Donation.objects.create(
                donor=donor,
                gift=gift,
                frequency=frequency,
                amount=amount + fee,
                fee_amount=fee,
                currency=currency,
                checkout_key=checkout_key,
                **attribution,
            )
    except IntegrityError:
        # A concurrent submit of the same checkout won the race: answer as its repeat.
        winner = (
            Donation.objects.filter(checkout_key=checkout_key).first() if checkout_key else None
        )
        if winner is None:
            raise
        return winner, False
    return donation, True


def card_ready(*, customer_id: str, setup_intent_id: str) -> tuple[str, str, str]:
    """The payment method of a succeeded SetupIntent of this customer, and its card."""
    setup_intent = stripe_gateway.setup_intent_retrieve(setup_intent_id=setup_intent_id)
    customer = setup_intent.get("customer")
    customer = customer.get("id") if isinstance(customer, dict) else customer
    if setup_intent.get("status") != "succeeded" or customer != customer_id:
        raise ValidationError(gettext("The card was not set up. Please enter it again."))
    payment_method = setup_intent["payment_method"]
    payment_method_id = (
        payment_method["id"] if isinstance(payment_method, dict) else str(payment_method)
    )
    brand, last4 = card_facts(
        stripe_gateway.payment_method_retrieve(payment_method_id=payment_method_id)
    )
    return payment_method_id, brand, last4


def _checkout_step_from_payment(*, donation: Donation, facts: PaymentIntentFacts) -> CheckoutStep:
    payment_intent_apply(facts=facts)
    donation.refresh_from_db()
    if facts.status == "succeeded" or donation.status == Donation.Status.PAID:
        return CheckoutStep(action="done", donation=donation)
    if facts.status == "requires_action":
        return CheckoutStep(
            action="authenticate", donation=donation, client_secret=facts.client_secret
        )
    if facts.status == "processing":
        return CheckoutStep(action="done", donation=donation)
    message = DECLINE_MESSAGE if facts.failure_message else AUTHENTICATION_MESSAGE
    donation_fail(donation=donation, message=message)
    return CheckoutStep(action="failed", donation=donation, message=message)


def _checkout_subscription_abandon(*, gift: Gift, donation: Donation, message: str) -> None:
    """The first payment failed: end the incomplete subscription so it never charges
    later; the reader tries again with another card."""
    if gift.stripe_subscription_id:
        try:
            stripe_gateway.subscription_cancel(subscription_id=gift.stripe_subscription_id)
        except stripe_gateway.StripeError:
            logger.info("Subscription %s already gone", gift.stripe_subscription_id)
    donation_fail(donation=donation, message=message)
    gift_end(gift=gift, reason=Gift.EndReason.PAYMENT_FAILED)


@log_context_from
def checkout_refresh(*, donation: Donation) -> CheckoutStep:
    """After the browser's confirmation (3-D Secure, or a current subscription's first
    invoice): read the payment from Stripe and apply it. The browser's word is never
    taken for it, and once the payment has succeeded the answer is never an error."""
    if donation.status == Donation.Status.PAID:
        return CheckoutStep(action="done", donation=donation)
    payment_intent_id = donation.stripe_payment_intent_id
    try:
        if not payment_intent_id and donation.gift_id and donation.stripe_invoice_id:
            # The first invoice's payment was not known when the subscription started.
            invoice = invoice_facts(
                stripe_gateway.invoice_retrieve(invoice_id=donation.stripe_invoice_id)
            )
            invoice_apply(facts=invoice, paid=True if invoice.status == "paid" else None)
            payment_intent_id = invoice.payment_intent_id
        if not payment_intent_id:
            return CheckoutStep(action="failed", donation=donation, message=AUTHENTICATION_MESSAGE)
        facts = payment_intent_facts(
            stripe_gateway.payment_intent_retrieve(payment_intent_id=payment_intent_id)
        )
    except stripe_gateway.StripeError as exc:
        logger.warning("Stripe error refreshing donation %s: %s", donation.pk, exc)
        return CheckoutStep(action="uncertain", donation=donation, message=UNCERTAIN_MESSAGE)
    if donation.gift_id and facts.status == "succeeded":
        return _checkout_refresh_gift(donation=donation)
    step = _checkout_step_from_payment(donation=donation, facts=facts)
    if step.action == "failed" and donation.gift_id:
        _checkout_subscription_abandon(
            gift=Gift.objects.get(pk=donation.gift_id), donation=donation, message=step.message
        )
    return step


def _checkout_refresh_gift(*, donation: Donation) -> CheckoutStep:
    """The first invoice's payment succeeded: apply the invoice and the subscription.
    Should Stripe not answer now, the payment still stands (the webhooks record it), so
    the donor is thanked, never told that nothing was charged."""
    gift = Gift.objects.get(pk=int(donation.gift_id or 0))
    try:
        if donation.stripe_invoice_id:
            invoice = invoice_facts(
                stripe_gateway.invoice_retrieve(invoice_id=donation.stripe_invoice_id)
            )
            invoice_apply(facts=invoice, paid=True if invoice.status == "paid" else None)
        if gift.stripe_subscription_id:
            subscription = stripe_gateway.subscription_retrieve(
                subscription_id=gift.stripe_subscription_id
            )
            subscription_apply(facts=subscription_facts(subscription))
    except stripe_gateway.StripeError as exc:
        logger.warning("Stripe error reading gift %s after payment: %s", gift.pk, exc)
    donation.refresh_from_db()
    return CheckoutStep(action="done", donation=donation)
