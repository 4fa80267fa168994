"""
Writes for donations: checkout, applying what Stripe says, donor self-service,
refunds, and queuing the emails owed to donors.

Every function that applies Stripe data is idempotent and order-independent:
it locks the row it changes and moves it only along allowed status transitions,
so a repeated or reordered webhook, or a webhook racing the checkout request,
changes nothing twice.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from outlet.core.addresses import email_digest, email_normalise
from outlet.core.ratelimits import rate_limit_hit

from . import stripe_gateway
from .models import Campaign, Donation, Donor, DonorEmail, Frequency, Gift, StripeEvent
from .stripe_objects import (
    ChargeFacts,
    DisputeFacts,
    InvoiceFacts,
    PaymentIntentFacts,
    SubscriptionFacts,
    card_facts,
    invoice_facts,
    payment_intent_facts,
    subscription_facts,
)

logger = logging.getLogger(__name__)

DECLINE_MESSAGE = "Your card was declined. Please try another card; nothing was charged."
AUTHENTICATION_MESSAGE = (
    "Your bank could not confirm this payment. Please try again or use another card; "
    "nothing was charged."
)
NEWSLETTER_CONSENT = "Send me the newsletter (we'll ask you to confirm)"
GENERIC_STRIPE_MESSAGE = (
    "We could not reach our payment processor. Nothing was charged; please try again in a minute."
)


# --- Amounts and limits --------------------------------------------------------


def donation_fee_compute(*, amount: int) -> int:
    """The fee that, added to `amount`, leaves `amount` after the processor's cut
    (DONATION_FEE_PERCENT % of the total plus DONATION_FEE_FIXED)."""
    percent = settings.DONATION_FEE_PERCENT / 100
    total = math.ceil((amount + settings.DONATION_FEE_FIXED) / (1 - percent))
    return total - amount


def payment_attempt_register(*, ip: str, email: str, purpose: str = "payment") -> None:
    """Count an attempt; raise ValidationError past the per-IP or per-email limit.

    Fixed windows in Django's cache: cheap, shared by every web process when the cache is
    Redis, and enough to stop card testing from one address or for one email. Each purpose
    counts apart, so asking for manage links never blocks giving."""
    window = settings.DONATION_RATE_LIMIT_WINDOW
    email_key = email_digest(email)
    limits = [
        (f"donations:{purpose}:ip:{ip}", settings.DONATION_RATE_LIMIT_PER_IP),
        (f"donations:{purpose}:email:{email_key}", settings.DONATION_RATE_LIMIT_PER_EMAIL),
    ]
    what = "payment attempts" if purpose == "payment" else "requests"
    for key, limit in limits:
        if not rate_limit_hit(key, limit=limit, window=window):
            raise ValidationError(
                f"Too many {what}. Please wait an hour and try again, or write to us."
            )


# --- Emails owed to donors ----------------------------------------------------


def _insert_once(table: str, values: dict[str, Any], conflict: str) -> int | None:
    """INSERT … ON CONFLICT DO NOTHING RETURNING id: the new row's id, or None when the
    unique `conflict` column already holds the value. One round trip, no savepoint, and
    under concurrency the second writer waits for the first to commit, then gets None.
    (PostgreSQL and SQLite 3.35+ both speak it.)"""
    columns = ", ".join(connection.ops.quote_name(name) for name in values)
    placeholders = ", ".join(["%s"] * len(values))
    sql = (
        f"INSERT INTO {connection.ops.quote_name(table)} ({columns}) VALUES ({placeholders}) "  # noqa: S608 (names from model meta, values bound)
        f"ON CONFLICT ({connection.ops.quote_name(conflict)}) DO NOTHING RETURNING id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, list(values.values()))
        row = cursor.fetchone()
    return row[0] if row else None


def stripe_event_record(*, event_id: str, event_type: str) -> bool:
    """Remember a Stripe event id; False when it was already recorded (a repeat)."""
    inserted = _insert_once(
        StripeEvent._meta.db_table,
        {"event_id": event_id, "type": event_type[:100], "received_at": timezone.now()},
        "event_id",
    )
    return inserted is not None


def donor_email_queue(
    *,
    kind: str,
    donor_id: int,
    donation_id: int | None = None,
    gift_id: int | None = None,
    dedupe_key: str | None = None,
) -> int | None:
    """Record an email owed and send it from the "mail" queue after commit.

    With a dedupe_key, the email is owed once however often this is called
    (the unique constraint decides); returns None when it was already owed."""
    from .tasks import donor_email_send_task

    email_id = _insert_once(
        DonorEmail._meta.db_table,
        {
            "kind": kind,
            "donor_id": donor_id,
            "donation_id": donation_id,
            "gift_id": gift_id,
            "dedupe_key": dedupe_key,
            "status": DonorEmail.Status.READY,
            "created_at": timezone.now(),
            "attempts": 0,
            "last_error": "",
        },
        "dedupe_key",
    )
    if email_id is None:
        return None
    transaction.on_commit(lambda: donor_email_send_task.delay(email_id))
    return email_id


def donor_email_send(*, donor_email_id: int) -> bool:
    """Send one owed email unless it has been sent. Returns True when it sent now.

    The row is locked while the message goes out, so two workers running the same task
    send once: the second waits, then sees `sent`."""
    from .emails import donor_email_message

    with transaction.atomic():
        email = (
            DonorEmail.objects.select_for_update(of=("self",))
            .select_related("donor", "donation", "gift")
            .filter(pk=donor_email_id)
            .first()
        )
        if email is None or email.status == DonorEmail.Status.SENT:
            return False
        donor_email_message(email).send()
        email.status = DonorEmail.Status.SENT
        email.sent_at = timezone.now()
        email.attempts += 1
        email.save(update_fields=["status", "sent_at", "attempts"])
    return True


def donor_email_failure_record(*, donor_email_id: int, error: str, final: bool) -> None:
    DonorEmail.objects.filter(pk=donor_email_id).exclude(status=DonorEmail.Status.SENT).update(
        attempts=F("attempts") + 1,
        last_error=error[:500],
        **({"status": DonorEmail.Status.FAILED} if final else {}),
    )


# --- Newsletter opt-in --------------------------------------------------------


def newsletter_opt_in_forward(*, donation: Donation, consent_text: str, ip: str = "") -> None:
    """Hand a donor's newsletter opt-in to the newsletters app, which records a pending
    subscription and sends its own double opt-in confirmation. The opt-in also stays on
    the donation (`newsletter_opt_in`). A refusal there (a suppressed address, no
    newsletter to offer) never blocks the gift."""
    if not donation.newsletter_opt_in:
        return
    from outlet.newsletters.services import subscriber_signup

    try:
        subscriber_signup(
            email=donation.donor.email,
            source=f"donation:{donation.pk}",
            name=donation.donor.name,
            consent_text=consent_text,
            ip=ip or None,
        )
    except ValidationError as exc:
        logger.info("Newsletter opt-in of donation %s not recorded: %s", donation.pk, exc)


# --- Checkout -----------------------------------------------------------------


def _idempotency_key(row: Donation | Gift, purpose: str) -> str:
    """Stable for retries of one operation on one row, never reused by another database
    (a development reset restarts ids at 1; Stripe keeps keys for 24 hours)."""
    created = int(row.created_at.timestamp() * 1_000_000)
    return f"outlet-{row._meta.model_name}-{row.pk}-{created}-{purpose}"


@dataclass(frozen=True)
class CheckoutStep:
    """What the browser does next: `setup` (confirmCardSetup with client_secret),
    `authenticate` (confirmCardPayment with client_secret), `done` or `failed`."""

    action: str
    donation: Donation
    client_secret: str = ""
    message: str = ""


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
) -> CheckoutStep:
    """Record a pending donation (and its gift, when recurring), then ask Stripe for a
    customer and a SetupIntent for the browser to collect the card into.

    The rows are committed before Stripe is called: a webhook that arrives before this
    request ends finds them (by the ids in the metadata)."""
    if not settings.DONATION_MIN_AMOUNT <= amount <= settings.DONATION_MAX_AMOUNT:
        raise ValidationError("Please choose an amount within the limits shown.")
    if frequency not in Frequency.values:
        raise ValidationError("Please choose how often to give.")
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
    with transaction.atomic():
        # An existing donor's name is left alone: anyone can type any address into the
        # form, so an unpaid checkout must not rename someone else's donor record.
        donor, _ = Donor.objects.get_or_create(
            email=email_normalise(email), defaults={"name": name}
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
            **attribution,
        )
    newsletter_opt_in_forward(donation=donation, consent_text=NEWSLETTER_CONSENT, ip=ip)
    try:
        customer = stripe_gateway.customer_create(
            email=donor.email, name=name, idempotency_key=_idempotency_key(donation, "customer")
        )
        setup_intent = stripe_gateway.setup_intent_create(
            customer_id=customer["id"], idempotency_key=_idempotency_key(donation, "setup")
        )
    except stripe_gateway.StripeError as exc:
        logger.warning("Stripe refused checkout for donation %s: %s", donation.pk, exc)
        donation_fail(donation=donation, message=GENERIC_STRIPE_MESSAGE)
        raise ValidationError(GENERIC_STRIPE_MESSAGE) from exc
    Donation.objects.filter(pk=donation.pk).update(stripe_customer_id=customer["id"])
    if gift is not None:
        Gift.objects.filter(pk=gift.pk).update(stripe_customer_id=customer["id"])
    donation.stripe_customer_id = customer["id"]
    return CheckoutStep(
        action="setup", donation=donation, client_secret=setup_intent["client_secret"]
    )


def _card_ready(*, customer_id: str, setup_intent_id: str) -> tuple[str, str, str]:
    """The payment method of a succeeded SetupIntent of this customer, and its card."""
    setup_intent = stripe_gateway.setup_intent_retrieve(setup_intent_id=setup_intent_id)
    customer = setup_intent.get("customer")
    customer = customer.get("id") if isinstance(customer, dict) else customer
    if setup_intent.get("status") != "succeeded" or customer != customer_id:
        raise ValidationError("The card was not set up. Please enter it again.")
    payment_method = setup_intent["payment_method"]
    payment_method_id = (
        payment_method["id"] if isinstance(payment_method, dict) else str(payment_method)
    )
    brand, last4 = card_facts(
        stripe_gateway.payment_method_retrieve(payment_method_id=payment_method_id)
    )
    return payment_method_id, brand, last4


def checkout_charge(*, donation: Donation, setup_intent_id: str) -> CheckoutStep:
    """Charge the card the browser just set up: a PaymentIntent for a one-time gift,
    a Subscription for a recurring one. Records the payment when Stripe says it
    succeeded; the webhook says so too, and the second word changes nothing."""
    if donation.status != Donation.Status.PENDING:
        return CheckoutStep(action="done", donation=donation)
    try:
        payment_method_id, brand, last4 = _card_ready(
            customer_id=donation.stripe_customer_id, setup_intent_id=setup_intent_id
        )
    except stripe_gateway.StripeError as exc:
        raise ValidationError(GENERIC_STRIPE_MESSAGE) from exc
    Donation.objects.filter(pk=donation.pk).update(card_brand=brand, card_last4=last4)
    if donation.gift_id is None:
        return _checkout_charge_once(
            donation=donation, payment_method_id=payment_method_id, attempt=setup_intent_id
        )
    Gift.objects.filter(pk=donation.gift_id).update(card_brand=brand, card_last4=last4)
    return _checkout_subscribe(
        donation=donation, payment_method_id=payment_method_id, attempt=setup_intent_id
    )


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
            idempotency_key=_idempotency_key(donation, f"payment-{attempt}"),
        )
    except stripe_gateway.CardError:
        donation_fail(donation=donation, message=DECLINE_MESSAGE)
        return CheckoutStep(action="failed", donation=donation, message=DECLINE_MESSAGE)
    except stripe_gateway.StripeError as exc:
        logger.warning("Stripe error charging donation %s: %s", donation.pk, exc)
        return CheckoutStep(action="failed", donation=donation, message=GENERIC_STRIPE_MESSAGE)
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
            metadata={"gift_id": str(gift.pk), "donation_id": str(donation.pk)},
            idempotency_key=_idempotency_key(gift, f"subscription-{attempt}"),
        )
    except stripe_gateway.CardError:
        donation_fail(donation=donation, message=DECLINE_MESSAGE)
        return CheckoutStep(action="failed", donation=donation, message=DECLINE_MESSAGE)
    except stripe_gateway.StripeError as exc:
        logger.warning("Stripe error subscribing gift %s: %s", gift.pk, exc)
        return CheckoutStep(action="failed", donation=donation, message=GENERIC_STRIPE_MESSAGE)
    subscription_facts_ = subscription_facts(subscription)
    Gift.objects.filter(pk=gift.pk, stripe_subscription_id__isnull=True).update(
        stripe_subscription_id=subscription_facts_.id
    )
    invoice = subscription_facts_.latest_invoice
    if invoice is None:
        return CheckoutStep(action="done", donation=donation)
    invoice_ = invoice_facts(invoice)
    invoice_apply(facts=invoice_, paid=invoice_.status == "paid")
    subscription_apply(facts=subscription_facts_)
    donation.refresh_from_db()
    if donation.status == Donation.Status.PAID:
        return CheckoutStep(action="done", donation=donation)
    payment = invoice_.payment_intent
    if payment is None and invoice_.payment_intent_id:
        payment = stripe_gateway.payment_intent_retrieve(
            payment_intent_id=invoice_.payment_intent_id
        )
    if payment is not None:
        facts = payment_intent_facts(payment)
        if facts.status == "requires_action":
            return CheckoutStep(
                action="authenticate", donation=donation, client_secret=facts.client_secret
            )
        if facts.status in ("requires_payment_method", "canceled"):
            # The first payment failed: end the incomplete subscription so it never
            # charges later; the reader tries again with another card.
            try:
                stripe_gateway.subscription_cancel(subscription_id=subscription_facts_.id)
            except stripe_gateway.StripeError:
                logger.info("Subscription %s already gone", subscription_facts_.id)
            donation_fail(donation=donation, message=DECLINE_MESSAGE)
            gift_end(gift=gift, by_donor=False)
            return CheckoutStep(action="failed", donation=donation, message=DECLINE_MESSAGE)
    return CheckoutStep(action="done", donation=donation)


def checkout_refresh(*, donation: Donation) -> CheckoutStep:
    """After the browser's 3-D Secure step: read the payment from Stripe and apply it.
    The browser's word is never taken for it."""
    if donation.status == Donation.Status.PAID:
        return CheckoutStep(action="done", donation=donation)
    if not donation.stripe_payment_intent_id:
        return CheckoutStep(action="failed", donation=donation, message=AUTHENTICATION_MESSAGE)
    try:
        payment_intent = stripe_gateway.payment_intent_retrieve(
            payment_intent_id=donation.stripe_payment_intent_id
        )
        facts = payment_intent_facts(payment_intent)
        if donation.gift_id and facts.status == "succeeded":
            gift = Gift.objects.get(pk=donation.gift_id)
            if gift.stripe_subscription_id:
                subscription = stripe_gateway.subscription_retrieve(
                    subscription_id=gift.stripe_subscription_id
                )
                subscription_apply(facts=subscription_facts(subscription))
            if donation.stripe_invoice_id:
                invoice = stripe_gateway.invoice_retrieve(invoice_id=donation.stripe_invoice_id)
                invoice_apply(facts=invoice_facts(invoice), paid=invoice.get("status") == "paid")
    except stripe_gateway.StripeError as exc:
        raise ValidationError(GENERIC_STRIPE_MESSAGE) from exc
    step = _checkout_step_from_payment(donation=donation, facts=facts)
    if step.action == "failed" and donation.gift_id:
        gift = Gift.objects.get(pk=donation.gift_id)
        if gift.stripe_subscription_id:
            try:
                stripe_gateway.subscription_cancel(subscription_id=gift.stripe_subscription_id)
            except stripe_gateway.StripeError:
                logger.info("Subscription %s already gone", gift.stripe_subscription_id)
        gift_end(gift=gift, by_donor=False)
    return step


# --- Applying what Stripe says --------------------------------------------------


def donation_fail(*, donation: Donation, message: str) -> None:
    Donation.objects.filter(pk=donation.pk, status=Donation.Status.PENDING).update(
        status=Donation.Status.FAILED, failure_message=message[:500]
    )


def payment_record(
    *,
    donation_id: int,
    charge_id: str = "",
    amount: int | None = None,
    donor_id: int | None = None,
) -> bool:
    """Mark a donation paid and owe its receipt. True when this call recorded it.

    Only a pending (or failed, then retried) donation becomes paid: a repeat, or a
    payment reported after its refund, changes nothing. The status test and the change
    are one conditional UPDATE, so two concurrent deliveries cannot both win."""
    changes: dict[str, Any] = {
        "status": Donation.Status.PAID,
        "paid_at": timezone.now(),
        "failure_message": "",
    }
    if charge_id:
        changes["stripe_charge_id"] = charge_id
    if amount:
        changes["amount"] = amount  # what Stripe charged is what was given
    # No savepoint: nothing here is caught and retried inside the transaction.
    with transaction.atomic(savepoint=False):
        updated = Donation.objects.filter(
            pk=donation_id, status__in=[Donation.Status.PENDING, Donation.Status.FAILED]
        ).update(**changes)
        if not updated:
            return False
        if donor_id is None:
            donor_id = Donation.objects.values_list("donor_id", flat=True).get(pk=donation_id)
        donor_email_queue(
            kind=DonorEmail.Kind.RECEIPT,
            donor_id=donor_id,
            donation_id=donation_id,
            dedupe_key=f"receipt:{donation_id}",
        )
    return True


def payment_record_if_matching(*, facts: PaymentIntentFacts) -> bool:
    """The webhook's fast path for the common case: one pending one-time donation holds
    this PaymentIntent with the same amount and currency. One conditional
    UPDATE … RETURNING marks it paid (no read first, nothing for another delivery to
    race), then the receipt is owed. False means "not that simple" (unknown, already
    paid, amounts differ, a gift's payment): the caller takes the general path."""
    if facts.status != "succeeded":
        return False
    table = connection.ops.quote_name(Donation._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET status = %s, paid_at = %s, failure_message = '', "  # noqa: S608 (table name from model meta)
            "stripe_charge_id = %s WHERE stripe_payment_intent_id = %s AND gift_id IS NULL "
            "AND status IN (%s, %s) AND amount = %s AND currency = %s RETURNING id, donor_id",
            [
                Donation.Status.PAID,
                timezone.now(),
                facts.charge_id,
                facts.id,
                Donation.Status.PENDING,
                Donation.Status.FAILED,
                facts.amount,
                facts.currency,
            ],
        )
        row = cursor.fetchone()
    if row is None:
        return False
    donation_id, donor_id = row
    donor_email_queue(
        kind=DonorEmail.Kind.RECEIPT,
        donor_id=donor_id,
        donation_id=donation_id,
        dedupe_key=f"receipt:{donation_id}",
    )
    return True


@dataclass(frozen=True)
class PaymentTarget:
    """The one-time donation a PaymentIntent pays, as recorded at checkout."""

    id: int
    amount: int
    currency: str
    donor_id: int


def donation_for_payment_intent(facts: PaymentIntentFacts) -> PaymentTarget | None:
    """Our one-time donation for this PaymentIntent: by its id, else by the donation id
    in its metadata when the webhook beat the checkout request to storing the id.
    None for a PaymentIntent of a subscription (its invoice carries it) or of an earlier
    attempt that another card has replaced."""
    row = (
        Donation.objects.filter(stripe_payment_intent_id=facts.id)
        .values_list("id", "amount", "currency", "donor_id", "gift_id")
        .first()
    )
    if row is not None:
        return PaymentTarget(*row[:4]) if row[4] is None else None
    candidate = facts.metadata.get("donation_id", "")
    if not candidate.isdigit():
        return None
    linked = Donation.objects.filter(
        pk=int(candidate), gift__isnull=True, stripe_payment_intent_id__isnull=True
    ).update(stripe_payment_intent_id=facts.id)
    if not linked:
        return None
    donation = Donation.objects.values_list("id", "amount", "currency", "donor_id").get(
        pk=int(candidate)
    )
    return PaymentTarget(*donation)


def payment_intent_apply(*, facts: PaymentIntentFacts, target: PaymentTarget | None = None) -> str:
    """Apply a PaymentIntent's state to its donation. Returns what happened, for logs."""
    target = target or donation_for_payment_intent(facts)
    if target is None:
        return "not a one-time donation"
    if facts.status == "succeeded":
        recorded = payment_record(
            donation_id=target.id,
            charge_id=facts.charge_id,
            amount=facts.amount,
            donor_id=target.donor_id,
        )
        return "paid" if recorded else "already applied"
    if facts.status == "requires_payment_method" and facts.failure_message:
        Donation.objects.filter(pk=target.id, status=Donation.Status.PENDING).update(
            status=Donation.Status.FAILED, failure_message=DECLINE_MESSAGE
        )
        return "failed"
    return "no change"


def _gift_for_subscription(subscription_id: str, metadata: dict[str, str]) -> Gift | None:
    if subscription_id:
        gift = Gift.objects.filter(stripe_subscription_id=subscription_id).first()
        if gift is not None:
            return gift
    gift_id = metadata.get("gift_id")
    if not gift_id and subscription_id:
        # The invoice came before we stored the subscription id (the webhook raced the
        # checkout request): the subscription itself names the gift.
        # A StripeError propagates: the webhook answers 503 and Stripe delivers it again,
        # rather than the event being recorded as applied with the payment lost.
        subscription = stripe_gateway.subscription_retrieve(subscription_id=subscription_id)
        gift_id = subscription_facts(subscription).metadata.get("gift_id")
    if not gift_id or not str(gift_id).isdigit():
        return None
    gift = Gift.objects.filter(pk=int(gift_id)).first()
    if gift is not None and subscription_id and not gift.stripe_subscription_id:
        Gift.objects.filter(pk=gift.pk, stripe_subscription_id__isnull=True).update(
            stripe_subscription_id=subscription_id
        )
    return gift


def invoice_apply(*, facts: InvoiceFacts, paid: bool) -> str:
    """Apply a subscription invoice: paid (invoice.paid / invoice.payment_succeeded, the
    same fact) or failed (invoice.payment_failed). The first invoice claims the donation
    made at checkout; later ones are renewals and get a donation row of their own."""
    if not facts.subscription_id and not facts.subscription_metadata:
        return "not a gift invoice"
    gift = _gift_for_subscription(facts.subscription_id, facts.subscription_metadata)
    if gift is None:
        return "unknown subscription"
    with transaction.atomic():
        gift = Gift.objects.select_for_update(of=("self",)).select_related("donor").get(pk=gift.pk)
        donation = Donation.objects.filter(stripe_invoice_id=facts.id).first()
        if donation is None:
            # Only the checkout makes a gift's donation without an invoice id.
            donation = (
                Donation.objects.filter(gift=gift, stripe_invoice_id__isnull=True)
                .order_by("created_at")
                .first()
            )
            if donation is not None:
                donation.stripe_invoice_id = facts.id
                donation.save(update_fields=["stripe_invoice_id"])
            else:
                donation = Donation.objects.create(
                    donor=gift.donor,
                    gift=gift,
                    frequency=gift.interval,
                    amount=facts.amount_paid or facts.amount_due or gift.amount,
                    currency=facts.currency or gift.currency,
                    stripe_invoice_id=facts.id,
                    stripe_customer_id=gift.stripe_customer_id,
                    card_brand=gift.card_brand,
                    card_last4=gift.card_last4,
                    campaign=gift.campaign,
                    source=gift.source,
                    utm=gift.utm,
                    public_credit=gift.public_credit,
                    public_name=gift.public_name,
                )
        if facts.payment_intent_id and not donation.stripe_payment_intent_id:
            taken = Donation.objects.filter(
                stripe_payment_intent_id=facts.payment_intent_id
            ).exists()
            if not taken:
                Donation.objects.filter(pk=donation.pk).update(
                    stripe_payment_intent_id=facts.payment_intent_id
                )
        if paid:
            recorded = payment_record(donation_id=donation.pk, charge_id=facts.charge_id)
            if gift.status in (Gift.Status.INCOMPLETE, Gift.Status.PAST_DUE):
                gift.status = Gift.Status.ACTIVE
                gift.save(update_fields=["status"])
            return "paid" if recorded else "already applied"
        was_running = gift.status in (Gift.Status.ACTIVE, Gift.Status.PAST_DUE)
        donation_fail(donation=donation, message="The renewal payment failed.")
        if gift.status == Gift.Status.ACTIVE:
            gift.status = Gift.Status.PAST_DUE
            gift.save(update_fields=["status"])
        if was_running:
            donor_email_queue(
                kind=DonorEmail.Kind.PAST_DUE,
                donor_id=gift.donor_id,
                gift_id=gift.pk,
                donation_id=donation.pk,
                dedupe_key=f"past-due:{facts.id}",
            )
        return "renewal failed"


_SUBSCRIPTION_STATUS = {
    "active": Gift.Status.ACTIVE,
    "trialing": Gift.Status.ACTIVE,
    "past_due": Gift.Status.PAST_DUE,
    "unpaid": Gift.Status.PAST_DUE,
    "canceled": Gift.Status.CANCELLED,
    "incomplete_expired": Gift.Status.CANCELLED,
}


def subscription_apply(*, facts: SubscriptionFacts) -> str:
    """Follow the subscription's status. Cancelled is final: a late "created" or
    "updated" event never revives a gift Stripe has ended."""
    gift = _gift_for_subscription(facts.id, facts.metadata)
    if gift is None:
        return "unknown subscription"
    target = _SUBSCRIPTION_STATUS.get(facts.status)
    if target == Gift.Status.CANCELLED:
        return "cancelled" if gift_end(gift=gift, by_donor=False) else "already applied"
    with transaction.atomic():
        gift = Gift.objects.select_for_update().get(pk=gift.pk)
        if gift.status == Gift.Status.CANCELLED:
            return "already cancelled"
        fields = []
        if target is not None and gift.status != target:
            gift.status = target
            fields.append("status")
        if facts.amount and facts.amount != gift.amount:
            gift.amount = facts.amount
            fields.append("amount")
        if fields:
            gift.save(update_fields=fields)
        return "updated" if fields else "no change"


def gift_end(*, gift: Gift, by_donor: bool) -> bool:
    """Mark a gift cancelled; the donor hears once (a donor's own cancellation and
    Stripe's later `customer.subscription.deleted` share one email)."""
    with transaction.atomic():
        gift = Gift.objects.select_for_update(of=("self",)).select_related("donor").get(pk=gift.pk)
        if gift.status == Gift.Status.CANCELLED:
            return False
        was_running = gift.status in (Gift.Status.ACTIVE, Gift.Status.PAST_DUE)
        gift.status = Gift.Status.CANCELLED
        gift.cancelled_at = timezone.now()
        gift.save(update_fields=["status", "cancelled_at"])
        if was_running:
            donor_email_queue(
                kind=DonorEmail.Kind.GIFT_CANCELLED if by_donor else DonorEmail.Kind.GIFT_ENDED,
                donor_id=gift.donor_id,
                gift_id=gift.pk,
                dedupe_key=f"gift-end:{gift.pk}",
            )
    return True


def _donation_for_charge(payment_intent_id: str, charge_id: str) -> Donation | None:
    if payment_intent_id:
        donation = Donation.objects.filter(stripe_payment_intent_id=payment_intent_id).first()
        if donation is not None:
            return donation
    if charge_id:
        return Donation.objects.filter(stripe_charge_id=charge_id).first()
    return None


def charge_refund_apply(*, facts: ChargeFacts) -> str:
    """Record a refund Stripe confirms. Works before the payment is recorded too: a
    refunded donation never becomes paid afterwards (see payment_record)."""
    with transaction.atomic():
        found = _donation_for_charge(facts.payment_intent_id, facts.id)
        if found is None:
            return "unknown charge"
        donation = Donation.objects.select_for_update().get(pk=found.pk)
        if facts.amount_refunded <= donation.refunded_amount:
            return "already applied"
        donation.refunded_amount = facts.amount_refunded
        fields = ["refunded_amount"]
        if facts.refunded or facts.amount_refunded >= donation.amount:
            donation.status = Donation.Status.REFUNDED
            donation.refunded_at = timezone.now()
            fields += ["status", "refunded_at"]
        if not donation.stripe_charge_id:
            donation.stripe_charge_id = facts.id
            fields.append("stripe_charge_id")
        donation.save(update_fields=fields)
        return "refunded"


def dispute_apply(*, facts: DisputeFacts) -> str:
    found = _donation_for_charge(facts.payment_intent_id, facts.charge_id)
    if found is None:
        return "unknown charge"
    updated = Donation.objects.filter(pk=found.pk, disputed_at__isnull=True).update(
        disputed_at=timezone.now()
    )
    if updated:
        logger.warning("Donation %s is disputed (%s)", found.pk, facts.reason)
    return "flagged" if updated else "already applied"


# --- Editors and donors ---------------------------------------------------------


def donation_refund(*, donation: Donation) -> None:
    """Ask Stripe to refund a paid donation. The donation is marked refunded when
    Stripe's `charge.refunded` webhook confirms it, not now."""
    if donation.status != Donation.Status.PAID or not donation.stripe_payment_intent_id:
        raise ValidationError(f"Donation #{donation.pk} is not a paid card payment.")
    # Claim the refund first, so two editors (or a double click) ask Stripe once.
    claimed = Donation.objects.filter(
        pk=donation.pk, status=Donation.Status.PAID, refund_requested_at__isnull=True
    ).update(refund_requested_at=timezone.now())
    if not claimed:
        return
    try:
        stripe_gateway.refund_create(
            payment_intent_id=donation.stripe_payment_intent_id,
            idempotency_key=_idempotency_key(donation, "refund"),
        )
    except stripe_gateway.StripeError:
        Donation.objects.filter(pk=donation.pk).update(refund_requested_at=None)
        raise


def donor_manage_link_request(*, email: str) -> None:
    """Email a self-service link if this address has given. Says nothing either way,
    so the form cannot be used to learn who gave."""
    donor = Donor.objects.filter(email=email_normalise(email)).first()
    if donor is None:
        return
    with transaction.atomic():
        donor_email_queue(kind=DonorEmail.Kind.MANAGE_LINK, donor_id=donor.pk)


def _gift_live(gift: Gift) -> None:
    if not gift.is_live or not gift.stripe_subscription_id:
        raise ValidationError("This gift has ended; there is nothing to change.")


def gift_cancel(*, gift: Gift) -> None:
    """The donor stops a recurring gift: Stripe first, then our record and the email."""
    _gift_live(gift)
    try:
        stripe_gateway.subscription_cancel(subscription_id=str(gift.stripe_subscription_id))
    except stripe_gateway.StripeError as exc:
        raise ValidationError(GENERIC_STRIPE_MESSAGE) from exc
    gift_end(gift=gift, by_donor=True)


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
        Gift.objects.filter(pk=gift.pk).update(amount=amount)
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
        payment_method_id, brand, last4 = _card_ready(
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
            kind=DonorEmail.Kind.CARD_UPDATED, donor_id=gift.donor_id, gift_id=gift.pk
        )
