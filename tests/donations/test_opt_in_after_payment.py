"""The donate form's newsletter opt-in is handed to the newsletters app only once the gift
is paid: an unpaid checkout (anyone can type any address) subscribes nobody, and so
reaches no donors-only newsletter."""

from __future__ import annotations

import pytest

from outlet.donations import services
from outlet.donations.models import Donation
from outlet.donations.stripe_objects import PaymentIntentFacts
from outlet.newsletters.models import Subscriber
from tests.donations import test_stripe_contract
from tests.factories import NewsletterFactory

pytestmark = pytest.mark.django_db
stub = test_stripe_contract.stub  # current Stripe, answered by the contract stub


@pytest.fixture
def stripe_checkout(stub):
    """Current Stripe (the contract stub): the payment is created on submit, unconfirmed."""
    return stub


def start(email: str, frequency: str = "once", *, opt_in: bool = True) -> Donation:
    step = services.checkout_intent_create(
        email=email, name="Ada", amount=2500, cover_fee=False, frequency=frequency,
        newsletter_opt_in=opt_in, ip="203.0.113.9", checkout_key=f"opt-in-{email}",
    )  # fmt: skip
    assert step.action == "confirm"
    return step.donation


def test_an_unpaid_checkout_subscribes_nobody(stripe_checkout, django_capture_on_commit_callbacks):
    NewsletterFactory(name="The Daily")
    NewsletterFactory(name="From the Editor", slug="donors", visibility="donors")
    with django_capture_on_commit_callbacks(execute=True):
        start("victim@example.test")
        start("monthly@example.test", frequency="month")
    assert not Subscriber.objects.exists()


def test_the_opt_in_is_forwarded_once_the_payment_is_recorded(
    stripe_checkout, django_capture_on_commit_callbacks
):
    NewsletterFactory(name="The Daily")
    with django_capture_on_commit_callbacks(execute=True):
        donation = start("ada@example.test")
    with django_capture_on_commit_callbacks(execute=True):
        assert services.payment_record(donation_id=donation.pk, charge_id="ch_1")
        assert not services.payment_record(donation_id=donation.pk, charge_id="ch_1")
    subscriber = Subscriber.objects.get(email="ada@example.test")
    assert subscriber.status == Subscriber.Status.PENDING  # its own double opt-in follows
    assert subscriber.consent_records.get().form == f"donation:{donation.pk}"


def test_the_webhooks_fast_path_forwards_the_opt_in_too(
    stripe_checkout, django_capture_on_commit_callbacks
):
    NewsletterFactory(name="The Daily")
    donation = start("fast@example.test")
    payment_intent_id = str(Donation.objects.get(pk=donation.pk).stripe_payment_intent_id)
    facts = PaymentIntentFacts(
        id=payment_intent_id, status="succeeded", amount=2500, currency=donation.currency,
        customer_id=donation.stripe_customer_id, invoice_id="", charge_id="ch_1",
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        assert services.payment_record_if_matching(facts=facts)
    assert Subscriber.objects.filter(email="fast@example.test").exists()


def test_a_paid_gift_without_the_opt_in_subscribes_nobody(stripe_checkout):
    NewsletterFactory(name="The Daily")
    donation = start("quiet@example.test", opt_in=False)
    services.payment_record(donation_id=donation.pk)
    assert not Subscriber.objects.exists()


@pytest.mark.xfail(
    strict=True,
    reason="the checkout's IP is not stored on the donation, so the opt-in forwarded at "
    "payment records its consent without it (main recorded it at checkout); needs a field, "
    "a migration and its erasure",
)
def test_the_opt_in_forwarded_at_payment_keeps_the_consent_ip(
    stripe_checkout, django_capture_on_commit_callbacks
):
    NewsletterFactory(name="The Daily")
    donation = start("ada@example.test")  # from 203.0.113.9
    with django_capture_on_commit_callbacks(execute=True):
        services.payment_record(donation_id=donation.pk, charge_id="ch_1")

    consent = Subscriber.objects.get(email="ada@example.test").consent_records.get()
    assert consent.ip == "203.0.113.9"
