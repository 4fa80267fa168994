"""
Checkout: a reader gives once or starts a recurring gift.

`checkout_start` records a pending donation (and gift) before Stripe is called, then
gets a customer and a SetupIntent for the browser; `checkout_charge` charges the card the
browser set up (a PaymentIntent, or a Subscription on current Stripe left incomplete until
the browser confirms its first invoice); `checkout_refresh` reads the payment from Stripe
after the browser's confirmation. The browser's word is never taken for a payment, and
once Stripe says a payment succeeded nothing after it makes the answer an error.
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
from .abandoned import EXPIRED_MESSAGE
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
    """What the browser does next: `setup` (confirmCardSetup with client_secret),
    `authenticate` (confirmCardPayment with client_secret), `done`, `failed` (nothing was
    charged; a new checkout may start) or `uncertain` (a charge may exist: ask again about
    this one, never start another)."""

    action: str
    donation: Donation
    client_secret: str = ""
    message: str = ""
    # The card to confirm with, when the browser confirms a payment that has none yet
    # (a current subscription's first invoice).
    payment_method_id: str = ""


def checkout_start(
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
) -> CheckoutStep:
    """Record a pending donation (and its gift, when recurring), then ask Stripe for a
    customer and a SetupIntent for the browser to collect the card into (the Card
    Element's flow; the donate page's Payment Element uses checkout_intent_create).

    A repeat of one browser checkout (same `checkout_key`) finds its donation and asks
    Stripe again under the first submit's idempotency keys, so it gets the same customer
    and SetupIntent, never a second charge."""
    donation, created = checkout_donation_record(
        email=email,
        name=name,
        amount=amount,
        cover_fee=cover_fee,
        frequency=frequency,
        campaign=campaign,
        source=source,
        utm=utm,
        public_credit=public_credit,
        public_name=public_name,
        newsletter_opt_in=newsletter_opt_in,
        ip=ip,
        checkout_key=checkout_key,
        language=language,
    )
    if not created:
        return _checkout_resume(donation=donation, name=name)
    # The newsletter opt-in waits for the payment (stripe_events.payment_record): anyone
    # can type any address here, and an unpaid checkout must subscribe nobody.
    return _checkout_setup(donation=donation, name=name)


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


def _checkout_resume(*, donation: Donation, name: str) -> CheckoutStep:
    """A repeat submit of one checkout: its donation's state, never a new charge."""
    if donation.status == Donation.Status.PAID:
        return CheckoutStep(action="done", donation=donation)
    if donation.status != Donation.Status.PENDING:
        return CheckoutStep(action="failed", donation=donation, message=donation.failure_message)
    if donation.card_last4 or donation.stripe_payment_intent_id:
        # The charge was already asked for: only asking about it again is safe.
        return CheckoutStep(action="uncertain", donation=donation, message=UNCERTAIN_MESSAGE)
    return _checkout_setup(donation=donation, name=name, resumed=True)


def _checkout_setup(*, donation: Donation, name: str, resumed: bool = False) -> CheckoutStep:
    donor = donation.donor
    gift = donation.gift
    if not donor.email:  # a checkout resumed after its donor was erased
        raise ValidationError(gettext("This checkout can no longer go on. Please start a new one."))
    try:
        customer = stripe_gateway.customer_create(
            email=donor.email, name=name, idempotency_key=idempotency_key(donation, "customer")
        )
        setup_intent = stripe_gateway.setup_intent_create(
            customer_id=customer["id"], idempotency_key=idempotency_key(donation, "setup")
        )
    except stripe_gateway.InvalidRequestError as exc:
        logger.warning("Stripe refused checkout for donation %s as malformed: %s", donation.pk, exc)
        if not resumed:
            donation_fail(donation=donation, message=REFUSED_MESSAGE)
        raise ValidationError(gettext(REFUSED_MESSAGE)) from exc
    except stripe_gateway.StripeError as exc:
        logger.warning("Stripe refused checkout for donation %s: %s", donation.pk, exc)
        if not resumed:
            donation_fail(donation=donation, message=GENERIC_STRIPE_MESSAGE)
        raise ValidationError(gettext(GENERIC_STRIPE_MESSAGE)) from exc
    Donation.objects.filter(pk=donation.pk).update(stripe_customer_id=customer["id"])
    if gift is not None:
        Gift.objects.filter(pk=gift.pk).update(stripe_customer_id=customer["id"])
    donation.stripe_customer_id = customer["id"]
    return CheckoutStep(
        action="setup", donation=donation, client_secret=setup_intent["client_secret"]
    )


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


@log_context_from
def checkout_charge(*, donation: Donation, setup_intent_id: str) -> CheckoutStep:
    """Charge the card the browser just set up: a PaymentIntent for a one-time gift,
    a Subscription for a recurring one. Records the payment when Stripe says it
    succeeded; the webhook says so too, and the second word changes nothing."""
    settled = _checkout_step_settled(donation)
    if settled is not None:
        return settled
    try:
        payment_method_id, brand, last4 = card_ready(
            customer_id=donation.stripe_customer_id, setup_intent_id=setup_intent_id
        )
    except stripe_gateway.StripeError as exc:
        raise ValidationError(gettext(GENERIC_STRIPE_MESSAGE)) from exc
    # The card marks the checkout as reaching the charge step, only while it is still
    # pending: one conditional UPDATE against the expiry's (which skips a row with a card),
    # so a checkout expired since this request read it is never charged.
    claimed = Donation.objects.filter(pk=donation.pk, status=Donation.Status.PENDING).update(
        card_brand=brand, card_last4=last4
    )
    if not claimed:
        donation.refresh_from_db()
        return _checkout_step_settled(donation) or CheckoutStep(
            action="failed", donation=donation, message=EXPIRED_MESSAGE
        )
    if donation.gift_id is None:
        return _checkout_charge_once(
            donation=donation, payment_method_id=payment_method_id, attempt=setup_intent_id
        )
    Gift.objects.filter(pk=donation.gift_id).update(card_brand=brand, card_last4=last4)
    return _checkout_subscribe(
        donation=donation, payment_method_id=payment_method_id, attempt=setup_intent_id
    )


def _checkout_step_settled(donation: Donation) -> CheckoutStep | None:
    """The answer for a donation no longer pending (a replayed request); None if pending."""
    if donation.status == Donation.Status.ABANDONED:
        return CheckoutStep(action="failed", donation=donation, message=EXPIRED_MESSAGE)
    if donation.status == Donation.Status.FAILED:
        # A replayed request: say what happened, never "done" for money not taken.
        message = donation.failure_message or AUTHENTICATION_MESSAGE
        return CheckoutStep(action="failed", donation=donation, message=message)
    if donation.status != Donation.Status.PENDING:
        return CheckoutStep(action="done", donation=donation)
    return None


def _checkout_charge_once(
    *, donation: Donation, payment_method_id: str, attempt: str
) -> CheckoutStep:
    try:
        payment_intent = stripe_gateway.payment_intent_create(
            amount=donation.amount,
            currency=donation.currency,
            customer_id=donation.stripe_customer_id,
            payment_method_id=payment_method_id,
            metadata={"donation_id": str(donation.pk)},
            description=f"Donation to {settings.OUTLET_NAME}",
            idempotency_key=idempotency_key(donation, f"payment-{attempt}"),
        )
    except stripe_gateway.CardError:
        donation_fail(donation=donation, message=DECLINE_MESSAGE)
        return CheckoutStep(action="failed", donation=donation, message=DECLINE_MESSAGE)
    except stripe_gateway.InvalidRequestError as exc:
        logger.warning("Stripe refused to charge donation %s as malformed: %s", donation.pk, exc)
        donation_fail(donation=donation, message=REFUSED_MESSAGE)
        return CheckoutStep(action="failed", donation=donation, message=REFUSED_MESSAGE)
    except stripe_gateway.StripeError as exc:
        logger.warning("Stripe error charging donation %s: %s", donation.pk, exc)
        return CheckoutStep(action="uncertain", donation=donation, message=UNCERTAIN_MESSAGE)
    facts = payment_intent_facts(payment_intent)
    Donation.objects.filter(pk=donation.pk, stripe_payment_intent_id__isnull=True).update(
        stripe_payment_intent_id=facts.id
    )
    return _checkout_step_from_payment(donation=donation, facts=facts)


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


def _checkout_subscribe(
    *, donation: Donation, payment_method_id: str, attempt: str
) -> CheckoutStep:
    gift = Gift.objects.get(pk=int(donation.gift_id or 0))
    try:
        stripe_gateway.customer_default_card_set(
            customer_id=gift.stripe_customer_id, payment_method_id=payment_method_id
        )
        plan_id = stripe_gateway.plan_ensure(
            amount=gift.amount, currency=gift.currency, interval=gift.interval
        )
        subscription = stripe_gateway.subscription_create(
            customer_id=gift.stripe_customer_id,
            plan_id=plan_id,
            payment_method_id=payment_method_id,
            metadata={"gift_id": str(gift.pk), "donation_id": str(donation.pk)},
            idempotency_key=idempotency_key(gift, f"subscription-{attempt}"),
        )
    except stripe_gateway.CardError:
        donation_fail(donation=donation, message=DECLINE_MESSAGE)
        return CheckoutStep(action="failed", donation=donation, message=DECLINE_MESSAGE)
    except stripe_gateway.InvalidRequestError as exc:
        logger.warning("Stripe refused to subscribe gift %s as malformed: %s", gift.pk, exc)
        donation_fail(donation=donation, message=REFUSED_MESSAGE)
        return CheckoutStep(action="failed", donation=donation, message=REFUSED_MESSAGE)
    except stripe_gateway.StripeError as exc:
        logger.warning("Stripe error subscribing gift %s: %s", gift.pk, exc)
        return CheckoutStep(action="uncertain", donation=donation, message=UNCERTAIN_MESSAGE)
    subscription_ = subscription_facts(subscription)
    Gift.objects.filter(pk=gift.pk, stripe_subscription_id__isnull=True).update(
        stripe_subscription_id=subscription_.id
    )
    invoice_object = subscription_.latest_invoice
    if invoice_object is None:
        return CheckoutStep(action="done", donation=donation)
    payment = None
    try:
        invoice_object = stripe_gateway.invoice_payments_fill(invoice=invoice_object)
        invoice = invoice_facts(invoice_object)
        payment = invoice.payment_intent
        if payment is None and invoice.payment_intent_id:
            payment = stripe_gateway.payment_intent_retrieve(
                payment_intent_id=invoice.payment_intent_id
            )
    except stripe_gateway.StripeError as exc:
        # Go on with the invoice as the subscription gave it: the browser can still confirm
        # with its confirmation secret, and the refresh finds the payment through the invoice.
        logger.warning("Stripe error reading gift %s's first invoice: %s", gift.pk, exc)
    invoice = invoice_facts(invoice_object)
    invoice_apply(facts=invoice, paid=True if invoice.status == "paid" else None)
    subscription_apply(facts=subscription_)
    donation.refresh_from_db()
    if donation.status == Donation.Status.PAID:
        return CheckoutStep(action="done", donation=donation)
    if payment is None:
        if invoice.confirmation_secret and invoice.status != "paid":
            return CheckoutStep(
                action="authenticate",
                donation=donation,
                client_secret=invoice.confirmation_secret,
                payment_method_id=payment_method_id,
            )
        return CheckoutStep(action="done", donation=donation)
    facts = payment_intent_facts(payment)
    if facts.status == "succeeded":
        return CheckoutStep(action="done", donation=donation)
    needs_browser = facts.status in ("requires_action", "requires_confirmation") or (
        # Current Stripe (default_incomplete): the first payment waits for the browser to
        # confirm it with the invoice's confirmation secret; nothing has failed yet.
        facts.status == "requires_payment_method"
        and invoice.confirmation_secret
        and not facts.failure_message
    )
    if needs_browser:
        return CheckoutStep(
            action="authenticate",
            donation=donation,
            client_secret=invoice.confirmation_secret or facts.client_secret,
            payment_method_id=payment_method_id if invoice.confirmation_secret else "",
        )
    if facts.status in ("requires_payment_method", "canceled"):
        _checkout_subscription_abandon(gift=gift, donation=donation, message=DECLINE_MESSAGE)
        return CheckoutStep(action="failed", donation=donation, message=DECLINE_MESSAGE)
    return CheckoutStep(action="done", donation=donation)


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
