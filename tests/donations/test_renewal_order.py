"""A renewal's refund or dispute may reach us before its invoice.paid: the charge is not
ours yet. The webhook reads from Stripe which invoice the charge paid and applies it, in
either order, once."""

from __future__ import annotations

import pytest
from django.utils import timezone

from outlet.donations import selectors, stripe_gateway
from outlet.donations.models import Donation, DonorEmail, Gift, StripeEvent
from tests.donations import stripe_events as se
from tests.donations.stripe_contract import StubStripe
from tests.factories import DonationFactory, GiftFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def stub(settings, monkeypatch):
    settings.STRIPE_API_BASE = "https://api.stripe.com"
    settings.STRIPE_DIALECT = "current"
    stripe = StubStripe()
    monkeypatch.setattr(stripe_gateway, "TRANSPORT", stripe)
    yield stripe
    assert stripe.problems == []


def renewal_at_stripe(stub: StubStripe) -> tuple[Gift, dict]:
    """A running gift whose renewal Stripe has charged (invoice, InvoicePayment, charge)."""
    gift = GiftFactory(status=Gift.Status.ACTIVE, amount=1500)
    DonationFactory(
        donor=gift.donor,
        gift=gift,
        frequency=gift.interval,
        amount=gift.amount,
        status=Donation.Status.PAID,
        paid_at=timezone.now(),
        stripe_invoice_id=f"in_first_{gift.pk}",
    )
    payment = stub._payment_intent(
        amount=gift.amount, currency=gift.currency, customer=gift.stripe_customer_id
    )
    invoice = se.invoice_current(gift, invoice_id="in_renewal")["data"]["object"]
    invoice.pop("livemode")
    stub._store("invoice", "in", **invoice)
    stub._store(
        "invoice_payment",
        "inpay",
        invoice="in_renewal",
        amount_paid=gift.amount,
        amount_requested=gift.amount,
        currency=gift.currency,
        payment={"type": "payment_intent", "payment_intent": payment["id"]},
        status="paid",
    )
    return gift, payment


def charge_refunded(gift: Gift, payment: dict, amount_refunded: int | None = None) -> dict:
    renewal = Donation(
        amount=gift.amount,
        currency=gift.currency,
        stripe_payment_intent_id=payment["id"],
        stripe_charge_id=payment["latest_charge"],
    )
    return se.charge_refunded_current(renewal, amount_refunded=amount_refunded)


def dispute(gift: Gift, payment: dict, **kwargs) -> dict:
    renewal = Donation(
        amount=gift.amount,
        currency=gift.currency,
        stripe_payment_intent_id=payment["id"],
        stripe_charge_id=payment["latest_charge"],
    )
    return se.dispute_current(renewal, **kwargs)


def renewal() -> Donation:
    return Donation.objects.get(stripe_invoice_id="in_renewal")


def receipts(donation: Donation) -> int:
    return DonorEmail.objects.filter(kind=DonorEmail.Kind.RECEIPT, donation=donation).count()


@pytest.mark.parametrize("refund_first", [True, False])
def test_renewal_refund_applies_in_either_order_once(client, stub, refund_first):
    gift, payment = renewal_at_stripe(stub)
    paid = se.invoice_current(gift, invoice_id="in_renewal")
    refunded = charge_refunded(gift, payment)
    again = charge_refunded(gift, payment)  # the same fact, another event id
    for evt in (refunded, paid, again) if refund_first else (paid, refunded, again):
        assert se.post_event(client, evt).status_code == 200

    donation = renewal()
    assert donation.status == Donation.Status.REFUNDED
    assert donation.refunded_amount == 1500
    assert donation.stripe_payment_intent_id == payment["id"]
    assert Donation.objects.filter(gift=gift).count() == 2
    # A receipt only when the payment was news before its refund.
    assert receipts(donation) == (0 if refund_first else 1)
    assert selectors.donation_totals().all_time == 1500  # the first payment only


@pytest.mark.parametrize("dispute_first", [True, False])
def test_renewal_dispute_applies_in_either_order_once(client, stub, dispute_first):
    gift, payment = renewal_at_stripe(stub)
    paid = se.invoice_current(gift, invoice_id="in_renewal")
    opened = dispute(gift, payment)
    again = dispute(gift, payment)
    for evt in (opened, paid) if dispute_first else (paid, opened):
        assert se.post_event(client, evt).status_code == 200
    donation = renewal()
    first_seen = donation.disputed_at

    assert se.post_event(client, again).status_code == 200

    donation.refresh_from_db()
    assert donation.status == Donation.Status.PAID
    assert first_seen is not None
    assert donation.disputed_at == first_seen
    assert donation.disputed_amount == 1500
    assert selectors.donation_totals().all_time == 1500


def test_renewal_dispute_closed_before_its_invoice_is_applied(client, stub):
    gift, payment = renewal_at_stripe(stub)
    se.post_event(client, dispute(gift, payment, type_="charge.dispute.closed", status="lost"))
    se.post_event(client, se.invoice_current(gift, invoice_id="in_renewal"))

    assert renewal().dispute_status == "lost"
    assert selectors.donation_totals().all_time == 1500


def test_unknown_charge_waits_for_stripe_when_its_invoice_cannot_be_read(client, stub):
    gift, payment = renewal_at_stripe(stub)
    stub.down.add("/v1/invoice_payments")

    response = se.post_event(client, charge_refunded(gift, payment))

    assert response.status_code == 503
    assert not StripeEvent.objects.exists()
    stub.requests.clear()


def test_a_charge_that_paid_no_invoice_of_ours_is_acknowledged(client, stub):
    payment = stub._payment_intent(amount=900, currency="usd", customer="cus_other")
    stranger = Donation(
        amount=900,
        currency="usd",
        stripe_payment_intent_id=payment["id"],
        stripe_charge_id=payment["latest_charge"],
    )

    response = se.post_event(client, se.charge_refunded_current(stranger))

    assert response.status_code == 200
    assert not Donation.objects.exists()


def test_a_known_charge_is_refunded_without_asking_stripe(client, stub):
    donation = DonationFactory(status=Donation.Status.PAID, stripe_charge_id="ch_known")
    se.post_event(client, se.charge_refunded_current(donation))
    assert Donation.objects.get().status == Donation.Status.REFUNDED
    assert stub.requests == []


# --- A renewal paid from the donor's credit balance -------------------------------------


def credit_invoice(gift: Gift, *, credit: int) -> dict:
    """invoice.paid for a renewal the customer's Stripe credit balance paid, in full or in
    part: Stripe charges only what the credit did not cover (amount_paid)."""
    charged = max(0, gift.amount - credit)
    evt = se.invoice_current(gift, invoice_id="in_credit")
    evt["data"]["object"].update(
        total=gift.amount,
        subtotal=gift.amount,
        amount_due=charged,
        amount_paid=charged,
        amount_remaining=0,
        starting_balance=-credit,
        ending_balance=min(0, gift.amount - credit),
    )
    return evt


def test_renewal_paid_from_credit_balance_is_no_card_payment_and_owes_no_receipt(client, stub):
    gift, _ = renewal_at_stripe(stub)  # the credit pays in_credit: no InvoicePayment for it
    for _ in range(2):
        assert se.post_event(client, credit_invoice(gift, credit=gift.amount)).status_code == 200

    donation = Donation.objects.get(stripe_invoice_id="in_credit")
    assert donation.status == Donation.Status.PAID
    assert (donation.amount, donation.credit_amount) == (0, 1500)
    assert (donation.card_brand, donation.card_last4) == ("", "")
    assert receipts(donation) == 0
    assert selectors.donation_totals().all_time == 1500  # the first payment only
    assert Gift.objects.get().status == Gift.Status.ACTIVE


def test_renewal_paid_partly_from_credit_records_what_the_card_paid(client, stub, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    gift, _ = renewal_at_stripe(stub)
    payment = stub._payment_intent(amount=1000, currency="usd", customer=gift.stripe_customer_id)
    stub._store(
        "invoice_payment",
        "inpay",
        invoice="in_credit",
        amount_paid=1000,
        amount_requested=1000,
        currency="usd",
        payment={"type": "payment_intent", "payment_intent": payment["id"]},
        status="paid",
    )
    for _ in range(2):
        se.post_event(client, credit_invoice(gift, credit=500))

    donation = Donation.objects.get(stripe_invoice_id="in_credit")
    assert (donation.amount, donation.credit_amount) == (1000, 500)
    assert donation.stripe_payment_intent_id == payment["id"]
    assert receipts(donation) == 1
    assert selectors.donation_totals().all_time == 2500

    from django.core import mail

    from outlet.donations import services

    services.donor_email_send(donor_email_id=DonorEmail.objects.get(donation=donation).pk)
    assert "$10.00" in mail.outbox[0].body
    assert "$5.00" in mail.outbox[0].body  # the credit, said as such


def test_renewal_refund_that_failed_before_its_invoice_arrived_is_applied(client, stub):
    """The same gap for a refund's own events: refund.failed for a renewal not yet ours."""
    gift, payment = renewal_at_stripe(stub)
    refund = stub._store(
        "refund",
        "re",
        amount=gift.amount,
        currency=gift.currency,
        payment_intent=payment["id"],
        charge=payment["latest_charge"],
        status="failed",
        failure_reason="expired_or_canceled_card",
    )
    renewal_charge = Donation(
        amount=gift.amount,
        currency=gift.currency,
        stripe_payment_intent_id=payment["id"],
        stripe_charge_id=payment["latest_charge"],
    )
    failed = se.refund_current(renewal_charge, refund_id=refund["id"], status="failed")

    assert se.post_event(client, failed).status_code == 200
    se.post_event(client, se.invoice_current(gift, invoice_id="in_renewal"))

    donation = renewal()
    assert donation.refunds.get().status == "failed"
    assert (donation.status, donation.refunded_amount) == (Donation.Status.PAID, 0)


def test_renewal_invoice_paid_with_nothing_taken_records_no_payment(client, stub):
    """The same mistake without a credit balance: a renewal invoice Stripe marks paid with
    nothing charged (a 100 % coupon) is not recorded as a card payment of the gift's amount."""
    gift, _ = renewal_at_stripe(stub)
    evt = se.invoice_current(gift, invoice_id="in_free")
    evt["data"]["object"].update(total=0, subtotal=0, amount_due=0, amount_paid=0)
    for _ in range(2):
        assert se.post_event(client, evt).status_code == 200

    assert not Donation.objects.filter(stripe_invoice_id="in_free", status="paid").exists()
    assert DonorEmail.objects.filter(kind=DonorEmail.Kind.RECEIPT).count() == 0
    assert selectors.donation_totals().all_time == 1500


def test_a_donors_data_download_says_what_the_credit_paid(client, stub):
    gift, _ = renewal_at_stripe(stub)
    se.post_event(client, credit_invoice(gift, credit=gift.amount))

    exported = selectors.donor_data_export(donor=gift.donor)

    renewal_row = next(row for row in exported["donations"] if row["credit_amount"])
    assert (renewal_row["amount"], renewal_row["credit_amount"]) == (0, 1500)


@pytest.mark.parametrize("refund_first", [True, False])
def test_renewal_refunded_in_full_leaves_recurring_revenue_in_either_order(
    client, stub, refund_first
):
    """A gift whose latest renewal was refunded in full is not counted on as recurring
    revenue, whether the refund came before the renewal's invoice.paid or after it."""
    gift, payment = renewal_at_stripe(stub)
    paid = se.invoice_current(gift, invoice_id="in_renewal")
    refunded = charge_refunded(gift, payment)
    for evt in (refunded, paid) if refund_first else (paid, refunded):
        se.post_event(client, evt)

    assert renewal().status == Donation.Status.REFUNDED
    assert selectors.donation_totals().monthly_recurring == 0


@pytest.mark.parametrize("ending_balance", [0, None])
def test_renewal_of_a_customer_who_owed_is_a_card_payment_with_no_credit(
    client, stub, ending_balance
):
    """A positive starting balance is money the customer owed (added to the invoice), not
    credit: the card paid it all, and nothing is recorded as paid from credit."""
    gift, _ = renewal_at_stripe(stub)
    evt = se.invoice_current(gift, invoice_id="in_renewal", amount=gift.amount + 300)
    evt["data"]["object"].update(starting_balance=300, ending_balance=ending_balance)

    assert se.post_event(client, evt).status_code == 200

    donation = renewal()
    assert donation.status == Donation.Status.PAID
    assert donation.credit_amount == 0
    assert receipts(donation) == 1


def test_late_payment_failed_for_a_refunded_renewal_leaves_the_gift_running(client, stub):
    """A renewal paid, then refunded; an invoice.payment_failed of an earlier attempt of the
    same invoice arrives last: the gift is not past due and the donor gets no 'could not
    be renewed'."""
    gift, payment = renewal_at_stripe(stub)
    se.post_event(client, se.invoice_current(gift, invoice_id="in_renewal"))
    se.post_event(client, charge_refunded(gift, payment))
    late = se.invoice_current(gift, invoice_id="in_renewal", paid=False)

    assert se.post_event(client, late).status_code == 200

    assert renewal().status == Donation.Status.REFUNDED
    assert Gift.objects.get().status == Gift.Status.ACTIVE
    assert not DonorEmail.objects.filter(kind=DonorEmail.Kind.PAST_DUE).exists()
