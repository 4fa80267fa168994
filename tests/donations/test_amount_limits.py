"""The maximum (and minimum) of a gift hold in the services themselves, not only in the
forms: over the maximum is refused, nothing is written, Stripe is not called."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from outlet.donations import services, stripe_gateway
from outlet.donations.forms import AmountChangeForm
from outlet.donations.models import Donation, Donor, DonorEmail, Gift
from tests.factories import DonorFactory, GiftFactory
from tests.readers.conftest import signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def stripe_calls(monkeypatch):
    """Every Stripe call a checkout or an amount change makes, recorded and answered."""
    calls: list[str] = []

    def answer(name, result):
        def call(**kwargs):
            calls.append(name)
            return result

        return call

    monkeypatch.setattr(stripe_gateway, "customer_create", answer("customer", {"id": "cus_1"}))
    monkeypatch.setattr(
        stripe_gateway,
        "payment_intent_create_deferred",
        answer(
            "payment",
            {"id": "pi_1", "status": "requires_payment_method", "client_secret": "pi_1_secret"},
        ),
    )
    monkeypatch.setattr(stripe_gateway, "subscription_amount_change", answer("change", None))
    return calls


def start(amount: int, frequency: str = "once"):
    return services.checkout_intent_create(
        email="ada@example.test",
        name="Ada Reader",
        amount=amount,
        cover_fee=False,
        frequency=frequency,
        ip="203.0.113.9",
        checkout_key=f"limits-{amount}-{frequency}",
    )


@pytest.mark.parametrize("frequency", ["once", "month"])
def test_a_new_gift_over_the_maximum_writes_nothing_and_never_reaches_stripe(
    settings, stripe_calls, frequency
):
    with pytest.raises(ValidationError):
        start(settings.DONATION_MAX_AMOUNT + 1, frequency)

    assert not Donation.objects.exists()
    assert not Gift.objects.exists()
    assert not Donor.objects.exists()
    assert stripe_calls == []


def test_a_new_gift_of_exactly_the_maximum_goes_to_stripe(settings, stripe_calls):
    step = start(settings.DONATION_MAX_AMOUNT)

    assert step.action == "confirm"
    assert Donation.objects.get().amount == settings.DONATION_MAX_AMOUNT
    assert stripe_calls == ["customer", "payment"]


def test_a_new_gift_under_the_minimum_writes_nothing(settings, stripe_calls):
    with pytest.raises(ValidationError):
        start(settings.DONATION_MIN_AMOUNT - 1)

    assert not Donation.objects.exists()
    assert stripe_calls == []


def test_an_amount_change_over_the_maximum_is_refused_by_the_service(settings, stripe_calls):
    gift = GiftFactory(amount=1000)

    with pytest.raises(ValidationError):
        services.gift_amount_change(gift=gift, amount=settings.DONATION_MAX_AMOUNT + 1)

    gift.refresh_from_db()
    assert gift.amount == 1000
    assert not DonorEmail.objects.exists()
    assert stripe_calls == []


def test_an_amount_change_over_the_maximum_is_refused_by_the_form(settings):
    settings.DONATION_MAX_AMOUNT = 100_000  # $1,000.00
    assert AmountChangeForm({"amount": "1000.00"}, currency="usd").is_valid()

    form = AmountChangeForm({"amount": "1000.01"}, currency="usd")

    assert not form.is_valid()
    assert "between" in form.errors["amount"][0]


def test_an_amount_change_over_the_maximum_from_the_account_changes_nothing(settings, stripe_calls):
    donor = DonorFactory(email="reader@example.com")
    gift = GiftFactory(donor=donor, amount=1000)
    over = (settings.DONATION_MAX_AMOUNT + 100) // 100

    response = signed_in("reader@example.com").post(
        reverse("readers:gift-amount", args=[gift.pk]), {"amount": str(over)}
    )

    assert response.status_code == 400
    gift.refresh_from_db()
    assert gift.amount == 1000
    assert stripe_calls == []


@pytest.mark.parametrize("frequency", ["once", "month"])
def test_a_new_gift_the_currency_cannot_charge_is_refused_by_the_service(
    settings, stripe_calls, frequency
):
    """BHD 10.005 (thousandths not in steps of 10) within the limits: refused before
    anything is written or Stripe is asked (which would refuse it after our rows)."""
    settings.DONATION_CURRENCY = "bhd"

    with pytest.raises(ValidationError):
        start(10_005, frequency)

    assert not Donation.objects.exists()
    assert not Gift.objects.exists()
    assert stripe_calls == []


def test_an_amount_change_the_currency_cannot_charge_is_refused_by_the_service(stripe_calls):
    gift = GiftFactory(amount=150_000, currency="isk")  # 1,500 kr; krónur are whole

    with pytest.raises(ValidationError):
        services.gift_amount_change(gift=gift, amount=150_050)

    gift.refresh_from_db()
    assert gift.amount == 150_000
    assert not DonorEmail.objects.exists()
    assert stripe_calls == []
