"""What a hostile or unlucky browser cannot do with the Payment Element flow: learn a
returning donor's name by typing their address, or be charged another amount than the one
its page shows after resuming a checkout. Against the contract stub (current Stripe)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from outlet.donations import services
from outlet.donations.models import Donation
from outlet.donations.tokens import checkout_token_make
from tests.donations import test_stripe_contract
from tests.factories import DonationFactory, DonorFactory

pytestmark = pytest.mark.django_db
stub = test_stripe_contract.stub  # current Stripe, answered by the contract stub


def submit(*, email="reader@example.org", name="A Reader", amount=2500, frequency="once",
           key="checkout-review-1"):  # fmt: skip
    return services.checkout_intent_create(
        email=email,
        name=name,
        amount=amount,
        cover_fee=False,
        frequency=frequency,
        ip="203.0.113.9",
        checkout_key=key,
    )


def test_typing_a_donors_address_never_shows_their_name(stub, client):
    """Anyone can type any address; the thank-you and return pages then greet without the
    name on record for it (the one the stranger typed is not kept either)."""
    donor = DonorFactory(email="ada@example.org", name="Ada Lovelace")
    DonationFactory(donor=donor, status=Donation.Status.PAID)
    step = submit(email="ada@example.org", name="Mallory")
    stub.authenticate(step.client_secret.split("_secret_")[0])
    donation = Donation.objects.get(pk=step.donation.pk)
    token = checkout_token_make(donation_id=donation.pk)

    returned = client.get(
        reverse("donations:return"),
        {"token": token, "payment_intent": donation.stripe_payment_intent_id},
    ).content.decode()
    thanks = client.get(reverse("donations:thanks", args=[token])).content.decode()

    assert Donation.objects.get(pk=donation.pk).status == Donation.Status.PAID
    for page in (returned, thanks):
        assert "Ada Lovelace" not in page
        # A plain thanks, not "Thank you, reader." to someone who just typed their name.
        assert "<h1>Thank you.</h1>" in page
        assert "reader." not in page


def test_a_first_time_donor_is_greeted_by_name(stub, client):
    step = submit(email="new@example.org", name="Grace Hopper")
    stub.authenticate(step.client_secret.split("_secret_")[0])
    services.checkout_confirmed(donation=Donation.objects.get(pk=step.donation.pk))
    token = checkout_token_make(donation_id=step.donation.pk)

    assert "Grace Hopper" in client.get(reverse("donations:thanks", args=[token])).content.decode()


@pytest.mark.parametrize(
    "changed", [{"amount": 5000}, {"frequency": "month"}], ids=["amount", "frequency"]
)
def test_a_resumed_checkout_with_another_amount_is_refused_not_charged_the_old_one(stub, changed):
    """After an uncertain answer the page keeps its checkout key; a reader who then picks
    another amount must not confirm the first payment (of the old amount) under a button
    showing the new one."""
    first = submit()
    assert first.action == "confirm"

    with pytest.raises(ValidationError):
        submit(**changed)

    assert Donation.objects.count() == 1
    assert [r for r in stub.requests if r.path == "/v1/payment_intents"].__len__() == 1


def test_a_resumed_checkout_with_the_same_amount_gets_the_same_payment(stub):
    first = submit()
    again = submit(name="A. Reader")

    assert again.action == "confirm" and again.client_secret == first.client_secret


def test_current_stripe_never_serves_the_localstripe_shim(client, settings):
    """Production speaks `current`: the page loads Stripe.js and donate.js, never the shim
    that fakes the Payment Element over localstripe."""
    settings.STRIPE_DIALECT = "current"
    settings.STRIPE_JS_URL = "https://js.stripe.com/v3/"

    page = client.get(reverse("donations:donate")).content.decode()

    assert "https://js.stripe.com/v3/" in page and "donate.js" in page
    assert "stripe-elements-shim" not in page
    settings.STRIPE_DIALECT = "localstripe"
    assert "stripe-elements-shim" in client.get(reverse("donations:donate")).content.decode()


def test_a_recurring_gift_never_starts_on_a_returning_donors_customer(stub):
    """A subscription's first invoice is paid, unless told otherwise, by its customer's
    default payment method: on a returning donor's customer, its PaymentIntent would come
    with their saved card, and its confirmation secret would let whoever typed their address
    confirm it with that card. So a recurring gift always gets a customer of its own."""
    first = submit(key="returning-1")
    stub.authenticate(first.client_secret.split("_secret_")[0])
    services.checkout_confirmed(donation=Donation.objects.get(pk=first.donation.pk))
    known = Donation.objects.get(pk=first.donation.pk).stripe_customer_id
    stub.objects[known]["invoice_settings"] = {"default_payment_method": "pm_saved_card"}

    monthly = submit(key="returning-2", frequency="month", name="Someone Typing This")

    (created,) = [
        r.params for r in stub.requests if r.method == "post" and r.path == "/v1/subscriptions"
    ]
    assert created["customer"] != known
    assert Donation.objects.get(pk=monthly.donation.pk).stripe_customer_id != known
    assert monthly.donation.gift.stripe_customer_id != known
