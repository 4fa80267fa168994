"""
Gift self-service: a donor cancels a recurring gift, changes its amount or swaps its card,
from the reader account (outlet/readers). Stripe is called first; our record follows only
what Stripe accepted, and the donor gets one email for each change.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from .. import stripe_gateway
from ..currencies import amount_is_valid
from ..models import Donation, Donor, DonorEmail, Gift
from ..stripe_objects import subscription_facts
from .checkout import GENERIC_STRIPE_MESSAGE, card_ready
from .donor_emails import donor_email_queue
from .stripe_customers import donor_stripe_sync_queue
from .stripe_events import DONOR_CANCELLATION_COMMENT, _end_reason, gift_end


def _gift_live(gift: Gift) -> None:
    if not gift.is_live or not gift.stripe_subscription_id:
        raise ValidationError(_("This gift has ended; there is nothing to change."))


def gift_cancel(*, gift: Gift) -> None:
    """The donor stops a recurring gift: Stripe first, then our record and the email."""
    _gift_live(gift)
    _subscription_end(gift)


def _subscription_end(gift: Gift) -> None:
    try:
        stripe_gateway.subscription_cancel(
            subscription_id=str(gift.stripe_subscription_id), comment=DONOR_CANCELLATION_COMMENT
        )
    except stripe_gateway.InvalidRequestError as exc:
        # Stripe answers "No such subscription" for one it has ended already (its webhook
        # lost or still coming): our record follows Stripe, and the cancel (or erasure)
        # goes on instead of failing for ever.
        if not _subscription_ended_at_stripe(gift):
            raise ValidationError(_(GENERIC_STRIPE_MESSAGE)) from exc
        return
    except stripe_gateway.StripeError as exc:
        raise ValidationError(_(GENERIC_STRIPE_MESSAGE)) from exc
    gift_end(gift=gift, reason=Gift.EndReason.DONOR)


def _subscription_ended_at_stripe(gift: Gift) -> bool:
    """Whether Stripe says the gift's subscription has ended; if so it is applied."""
    try:
        subscription = stripe_gateway.subscription_retrieve(
            subscription_id=str(gift.stripe_subscription_id)
        )
    except stripe_gateway.StripeError:
        return False
    facts = subscription_facts(subscription)
    if facts.status not in ("canceled", "incomplete_expired"):
        return False
    gift_end(gift=gift, reason=_end_reason(facts, gift))
    return True


def gift_amount_change(*, gift: Gift, amount: int) -> None:
    """New monthly (or yearly) amount from the next renewal on; no proration.

    Two changes at once (two tabs, a double submit) must leave Stripe charging what our
    record and the confirmation email say. So the gift's row is locked, re-read and
    re-checked, Stripe is told, and the row written, all in one short transaction on
    that one row: the second change waits for the first and then starts from its
    amount. The lock is held over the Stripe calls (timeout 10 s, two retries; they are
    idempotent), which blocks only other writes to this one gift, such as a webhook
    for it, for that long; no other row or table waits. A Stripe error rolls back and
    leaves both sides as they were."""
    if not settings.DONATION_MIN_AMOUNT <= amount <= settings.DONATION_MAX_AMOUNT:
        raise ValidationError(_("Please choose an amount within the limits shown."))
    if not amount_is_valid(amount=amount, currency=gift.currency):
        raise ValidationError(_("Please choose an amount this currency can be charged in."))
    with transaction.atomic():
        gift = Gift.objects.select_for_update().get(pk=gift.pk)
        _gift_live(gift)
        if amount == gift.amount:
            return  # a double submit: changed and confirmed once
        try:
            stripe_gateway.subscription_amount_change(
                subscription_id=str(gift.stripe_subscription_id),
                amount=amount,
                currency=gift.currency,
                interval=gift.interval,
            )
        except stripe_gateway.StripeError as exc:
            raise ValidationError(_(GENERIC_STRIPE_MESSAGE)) from exc
        Gift.objects.filter(pk=gift.pk).update(amount=amount)
        donor_email_queue(
            kind=DonorEmail.Kind.AMOUNT_CHANGED, donor_id=gift.donor_id, gift_id=gift.pk
        )


def gift_card_setup_start(*, gift: Gift) -> str:
    """A SetupIntent's client secret for the Payment Element (setup mode) to save the new
    card, or any other reusable method the account offers."""
    _gift_live(gift)
    try:
        setup_intent = stripe_gateway.setup_intent_create_deferred(
            customer_id=gift.stripe_customer_id,
            idempotency_key=f"gift-{gift.pk}-card-{timezone.now().timestamp()}",
        )
    except stripe_gateway.StripeError as exc:
        raise ValidationError(_(GENERIC_STRIPE_MESSAGE)) from exc
    return str(setup_intent["client_secret"])


def gift_card_update(*, gift: Gift, setup_intent_id: str) -> None:
    """Renewals use the card just set up; Stripe retries a past-due invoice with it."""
    _gift_live(gift)
    try:
        payment_method_id, brand, last4 = card_ready(
            customer_id=gift.stripe_customer_id, setup_intent_id=setup_intent_id
        )
        stripe_gateway.customer_default_card_set(
            customer_id=gift.stripe_customer_id, payment_method_id=payment_method_id
        )
        stripe_gateway.subscription_default_card_set(
            subscription_id=str(gift.stripe_subscription_id), payment_method_id=payment_method_id
        )
    except stripe_gateway.StripeError as exc:
        raise ValidationError(_(GENERIC_STRIPE_MESSAGE)) from exc
    with transaction.atomic():
        Gift.objects.filter(pk=gift.pk).update(card_brand=brand, card_last4=last4)
        donor_email_queue(
            kind=DonorEmail.Kind.CARD_UPDATED,
            donor_id=gift.donor_id,
            gift_id=gift.pk,
            dedupe_key=f"card-updated:{gift.pk}:{setup_intent_id}",  # one card set-up, one email
        )


def donor_email_change(*, donor: Donor, email: str) -> None:
    """The donor's address becomes `email` (confirmed by the readers app with a link sent
    to it). The donor's Stripe customers follow after commit (stripe_customers.py)."""
    from outlet.core.addresses import email_normalise

    Donor.objects.filter(pk=donor.pk).update(email=email_normalise(email))
    donor_stripe_sync_queue(donor_id=donor.pk)


def _gifts_that_may_charge(donor: Donor) -> QuerySet[Gift]:
    return donor.gifts.filter(
        status__in=[Gift.Status.ACTIVE, Gift.Status.PAST_DUE, Gift.Status.INCOMPLETE],
        stripe_subscription_id__gt="",
    )


def donor_gifts_stop(*, donor: Donor) -> None:
    """The first step of an erasure: every recurring gift that may still charge is
    cancelled, including an incomplete one waiting for its first payment (3-D Secure): the
    bank's approval would start it. One gift at a time, Stripe first and then our record
    (committed), so whatever fails, Stripe and the record agree about each gift. Raises
    ValidationError (and the erasure stops, nothing of it done) if Stripe refuses."""
    for gift in _gifts_that_may_charge(donor):
        _subscription_end(gift)


def donor_erase(*, donor: Donor) -> None:
    """The donor asked for their data to be deleted; runs inside the caller's transaction,
    after `donor_gifts_stop`. Payment rows stay, as the law requires for receipts and
    accounts: amount, currency, dates, status, receipt number and Stripe's ids (for a
    refund or a dispute). What identifies the person goes: the address becomes NULL (no
    form can submit it and no other row can collide with it, so this cannot fail), the
    name, public credit name and card digits are cleared, and the record of emails sent
    is deleted, and the donor's Stripe customers lose their email and name after commit.
    Refuses (ValidationError, nothing written) a gift still able to charge."""
    with transaction.atomic():
        if _gifts_that_may_charge(donor).exists():
            raise ValidationError(_("A recurring gift is still running; it must end first."))
        Donor.objects.filter(pk=donor.pk).update(email=None, name="")
        Donation.objects.filter(donor=donor).update(
            public_name="", public_credit=False, card_brand="", card_last4=""
        )
        Gift.objects.filter(donor=donor).update(
            public_name="", public_credit=False, card_brand="", card_last4=""
        )
        DonorEmail.objects.filter(donor=donor).delete()
        donor_stripe_sync_queue(donor_id=donor.pk)
