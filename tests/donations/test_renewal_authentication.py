"""A renewal the donor's bank wants confirmed (3-D Secure): the donor gets one email with a
link to confirm it (the invoice's own page), worded as a confirmation, never as a decline."""

from __future__ import annotations

import pytest
from django.core import mail
from django.utils import timezone

from outlet.donations import services, stripe_gateway
from outlet.donations.models import Donation, DonorEmail, Gift
from tests.donations import stripe_events as se
from tests.donations.stripe_contract import StubStripe
from tests.factories import DonationFactory, GiftFactory

pytestmark = pytest.mark.django_db

HOSTED = "https://invoice.stripe.com/i/acct_1Outlet/test_YWNjdF8xT3V0bGV0"


@pytest.fixture
def stub(settings, monkeypatch):
    settings.STRIPE_API_BASE = "https://api.stripe.com"
    settings.STRIPE_DIALECT = "current"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    stripe = StubStripe()
    monkeypatch.setattr(stripe_gateway, "TRANSPORT", stripe)
    yield stripe
    assert stripe.problems == []


def running_gift(stub: StubStripe, status: str = Gift.Status.ACTIVE) -> Gift:
    """A gift whose renewal's PaymentIntent waits for the donor's bank (requires_action)."""
    gift = GiftFactory(status=status, amount=1200, card_last4="3155")
    if status != Gift.Status.INCOMPLETE:
        DonationFactory(
            donor=gift.donor,
            gift=gift,
            frequency=gift.interval,
            amount=gift.amount,
            status=Donation.Status.PAID,
            paid_at=timezone.now(),
            stripe_invoice_id=f"in_first_{gift.pk}",
        )
    invoice = se.invoice_current(gift, invoice_id="in_3ds", paid=False)["data"]["object"]
    invoice.pop("livemode")
    stub._store("invoice", "in", **invoice)
    stub.card = "3ds"
    payment = stub._payment_intent(
        amount=gift.amount, currency=gift.currency, customer=gift.stripe_customer_id
    )
    stub._store(
        "invoice_payment",
        "inpay",
        invoice="in_3ds",
        amount_requested=gift.amount,
        currency=gift.currency,
        payment={"type": "payment_intent", "payment_intent": payment["id"]},
        status="open",
    )
    return gift


def action_required(gift: Gift, type_: str = "invoice.payment_action_required") -> dict:
    evt = se.invoice_current(gift, invoice_id="in_3ds", paid=False, type_=type_)
    evt["data"]["object"]["hosted_invoice_url"] = HOSTED
    return evt


def asked(gift: Gift) -> list[DonorEmail]:
    return list(DonorEmail.objects.filter(gift=gift).exclude(kind=DonorEmail.Kind.RECEIPT))


def test_renewal_needing_authentication_emails_a_link_to_confirm_once(client, stub):
    gift = running_gift(stub)
    event = action_required(gift)
    assert se.post_event(client, event).status_code == 200
    assert se.post_event(client, event).status_code == 200  # a repeat
    assert se.post_event(client, action_required(gift)).status_code == 200  # the same fact

    emails = asked(gift)
    assert [email.kind for email in emails] == [DonorEmail.Kind.PAYMENT_ACTION_REQUIRED]
    renewal = Donation.objects.get(stripe_invoice_id="in_3ds")
    assert renewal.status == Donation.Status.PENDING  # nothing failed: it waits for the donor
    services.donor_email_send(donor_email_id=emails[0].pk)
    services.donor_email_send(donor_email_id=emails[0].pk)  # its task, run twice
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [gift.donor.email]
    assert HOSTED in message.body
    assert HOSTED in message.alternatives[0][0]
    assert "confirm" in message.subject.lower()
    for text in (message.subject, message.body, message.alternatives[0][0]):
        assert "declined" not in text.lower()


def test_payment_failed_that_needs_authentication_asks_to_confirm_not_declined(client, stub):
    """Stripe may also send invoice.payment_failed for a payment waiting for 3-D Secure:
    it is the same request to confirm, one email, and no "could not be renewed"."""
    gift = running_gift(stub)
    se.post_event(client, action_required(gift, type_="invoice.payment_failed"))
    se.post_event(client, action_required(gift))

    assert [email.kind for email in asked(gift)] == [DonorEmail.Kind.PAYMENT_ACTION_REQUIRED]
    assert Donation.objects.get(stripe_invoice_id="in_3ds").status == Donation.Status.PENDING


def test_authentication_asked_after_the_renewal_was_paid_sends_nothing(client, stub):
    gift = running_gift(stub)
    paid = se.invoice_current(gift, invoice_id="in_3ds")
    # The donor confirmed (from Stripe's own email) before our event arrived.
    payment = next(obj for obj in stub.objects.values() if obj["object"] == "payment_intent")
    payment.update(status="succeeded", latest_charge=stub._charge(payment))
    next(obj for obj in stub.objects.values() if obj["object"] == "invoice_payment").update(
        status="paid", amount_paid=gift.amount
    )
    se.post_event(client, paid)
    se.post_event(client, action_required(gift))

    assert asked(gift) == []
    assert Donation.objects.get(stripe_invoice_id="in_3ds").status == Donation.Status.PAID


def test_first_payment_is_confirmed_in_the_browser_not_by_email(client, stub):
    gift = running_gift(stub, status=Gift.Status.INCOMPLETE)
    se.post_event(client, action_required(gift))
    assert asked(gift) == []


def test_request_to_confirm_is_not_sent_once_the_renewal_is_paid(client, stub):
    """The donor confirmed (Stripe emails them too) before our email's task ran."""
    gift = running_gift(stub)
    se.post_event(client, action_required(gift))
    Donation.objects.filter(stripe_invoice_id="in_3ds").update(status=Donation.Status.PAID)
    email = asked(gift)[0]

    assert services.donor_email_send(donor_email_id=email.pk) is False

    assert mail.outbox == []
    email.refresh_from_db()
    assert email.status == DonorEmail.Status.SKIPPED


def test_renewal_declined_then_needing_authentication_on_retry_still_asks_the_donor(client, stub):
    """Stripe's retry of a declined renewal (the donor added a new card) may need the bank's
    confirmation: the donation is failed from the first attempt, and the request to confirm
    must still reach the donor, not be skipped as if the renewal were settled."""
    gift = running_gift(stub)
    payment = next(obj for obj in stub.objects.values() if obj["object"] == "payment_intent")
    payment["status"] = "requires_payment_method"
    se.post_event(client, action_required(gift, type_="invoice.payment_failed"))
    assert Donation.objects.get(stripe_invoice_id="in_3ds").status == Donation.Status.FAILED

    payment["status"] = "requires_action"
    se.post_event(client, action_required(gift))
    email = next(e for e in asked(gift) if e.kind == DonorEmail.Kind.PAYMENT_ACTION_REQUIRED)

    assert services.donor_email_send(donor_email_id=email.pk) is True
    assert HOSTED in mail.outbox[-1].body


def test_request_to_confirm_is_not_sent_once_the_gift_has_ended(client, stub):
    gift = running_gift(stub)
    se.post_event(client, action_required(gift))
    Donation.objects.filter(stripe_invoice_id="in_3ds").update(status=Donation.Status.FAILED)
    Gift.objects.filter(pk=gift.pk).update(status=Gift.Status.CANCELLED)

    assert services.donor_email_send(donor_email_id=asked(gift)[0].pk) is False
    assert mail.outbox == []
