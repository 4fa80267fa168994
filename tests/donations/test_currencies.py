"""Amounts in currencies with 0, 2 and 3 decimals: what the reader types is what Stripe
charges, and every label, email and export shows the same amount."""

from __future__ import annotations

import pytest
from django.urls import reverse

from outlet.donations import selectors, services, stripe_gateway
from outlet.donations.emails import donor_email_message
from outlet.donations.models import Donation, DonorEmail
from tests.donations.localstripe_browser import confirm_payment
from tests.factories import DonationFactory, DonorFactory

pytestmark = pytest.mark.django_db

# (currency, typed by the reader, minor units Stripe takes, label on the button/receipt)
CURRENCIES = [
    ("jpy", "5000", 5000, "¥5,000"),
    ("krw", "50000", 50000, "₩50,000"),
    ("bhd", "12.5", 12500, "BHD12.500"),
    ("eur", "12.50", 1250, "€12.50"),
    ("usd", "12.50", 1250, "$12.50"),
]


@pytest.fixture
def currency_site(settings):
    def use(currency: str) -> None:
        settings.DONATION_CURRENCY = currency
        settings.DONATION_MIN_AMOUNT = 100
        settings.DONATION_MAX_AMOUNT = 10_000_000

    return use


def start(client, **overrides):
    data = {
        "amount_choice": "other",
        "frequency": "once",
        "name": "Ada Reader",
        "email": "ada@example.test",
    }
    data.update(overrides)
    return client.post(reverse("donations:checkout-intent"), data)


@pytest.mark.parametrize(("currency", "typed", "minor", "label"), CURRENCIES)
def test_typed_amount_is_charged_in_the_currency_minor_units(
    client, localstripe, currency_site, currency, typed, minor, label
):
    currency_site(currency)

    response = start(client, custom_amount=typed)

    assert response.status_code == 200, response.json()
    donation = Donation.objects.get()
    assert (donation.amount, donation.currency) == (minor, currency)
    error = confirm_payment(localstripe, response.json()["client_secret"], "4242424242424242")
    assert error is None
    services.checkout_confirmed(donation=donation)
    donation.refresh_from_db()
    charged = stripe_gateway.payment_intent_retrieve(
        payment_intent_id=donation.stripe_payment_intent_id
    )
    assert (charged["amount"], charged["currency"]) == (minor, currency)
    receipt = DonorEmail.objects.get(kind="receipt", donation=donation)
    assert f"Amount: {label}" in donor_email_message(receipt).body


@pytest.mark.parametrize(
    ("currency", "typed"),
    [("jpy", "5000.5"), ("krw", "0.5"), ("bhd", "12.505"), ("usd", "12.505"), ("isk", "10.5")],
)
def test_amount_with_more_decimals_than_the_currency_has_is_refused(
    client, currency_site, currency, typed
):
    currency_site(currency)

    response = start(client, custom_amount=typed)

    assert response.status_code == 400
    assert "custom_amount" in response.json()["fields"]
    assert not Donation.objects.exists()


@pytest.mark.parametrize(
    ("currency", "presets", "labels"),
    [
        ("usd", [1250, 2500], ["$12.50", "$25"]),
        ("eur", [1000, 1999], ["€10", "€19.99"]),
        ("jpy", [1000, 5000], ["¥1,000", "¥5,000"]),
        ("bhd", [5000, 12500], ["BHD5", "BHD12.500"]),
    ],
)
def test_preset_buttons_show_the_amount_they_charge(client, settings, currency, presets, labels):
    settings.DONATION_CURRENCY = currency
    settings.DONATION_PRESETS = presets

    html = client.get("/donate/").content.decode()

    for label in labels:
        assert f"<span>{label}</span>" in html


@pytest.mark.parametrize(("currency", "exponent", "places"), [("jpy", 0, 0), ("bhd", 3, 2)])
def test_donate_page_tells_the_script_the_currency_exponent(
    client, settings, currency, exponent, places
):
    settings.DONATION_CURRENCY = currency

    html = client.get("/donate/").content.decode()

    assert f'data-exponent="{exponent}"' in html
    assert f'data-places="{places}"' in html


@pytest.mark.parametrize(
    ("currency", "amount", "written"),
    [
        ("jpy", 5000, "5000"),
        ("krw", 50000, "50000"),
        ("bhd", 12500, "12.500"),
        ("usd", 1250, "12.50"),
    ],
)
def test_csv_export_writes_each_amount_in_its_currency_units(currency, amount, written):
    DonationFactory(amount=amount, fee_amount=amount, refunded_amount=amount, currency=currency)

    header, row = list(selectors.donation_csv_rows(queryset=Donation.objects.all()))
    by_column = dict(zip(header, row, strict=True))

    assert by_column["amount"] == written
    assert by_column["fee_covered"] == written
    assert by_column["refunded_amount"] == written


def test_covered_fee_keeps_a_three_decimal_total_chargeable(settings):
    settings.DONATION_CURRENCY = "bhd"
    settings.DONATION_FEE_PERCENT = 2.9
    settings.DONATION_FEE_FIXED = 30

    fee = services.donation_fee_compute(amount=12500)

    assert fee > 0
    assert (12500 + fee) % 10 == 0


def test_admin_and_emails_show_a_zero_decimal_amount_as_typed():
    donor = DonorFactory()
    donation = DonationFactory(donor=donor, amount=5000, currency="jpy", status="paid")
    receipt = DonorEmail.objects.create(kind="receipt", donor=donor, donation=donation)

    assert "Amount: ¥5,000" in donor_email_message(receipt).body


@pytest.mark.parametrize(
    ("currency", "setting", "value"),
    [
        ("isk", "DONATION_PRESETS", [1250, 2500]),  # ISK 12.50: whole krónur only
        ("bhd", "DONATION_MIN_AMOUNT", 1005),  # BHD 1.005: steps of 0.010
        ("isk", "DONATION_MAX_AMOUNT", 99_999),
    ],
)
def test_a_configured_amount_the_currency_cannot_charge_fails_the_system_check(
    settings, currency, setting, value
):
    from django.core.checks import run_checks

    settings.DONATION_CURRENCY = currency
    settings.DONATION_PRESETS = [10_000]
    settings.DONATION_MIN_AMOUNT = 1_000
    settings.DONATION_MAX_AMOUNT = 1_000_000
    assert not [e for e in run_checks() if e.id.startswith("donations.")]
    setattr(settings, setting, value)

    errors = [e for e in run_checks() if e.id.startswith("donations.")]

    assert [e.id for e in errors] == ["donations.E001"]
    assert setting in errors[0].msg


# --- The reader's conventions (issue 24) -------------------------------------------


@pytest.mark.parametrize(
    ("language", "amount", "currency", "whole", "shown"),
    [
        ("es", 123456, "eur", False, "1.234,56\xa0€"),
        ("pt-br", 2500, "brl", False, "R$\xa025,00"),
        ("en-us", 2500, "usd", True, "$25"),
        ("fr", 123456, "eur", False, "1\u202f234,56\xa0€"),
        ("es", 2500, "usd", False, "25,00\xa0US$"),
    ],
)
def test_amounts_are_written_in_the_active_languages_conventions(
    language, amount, currency, whole, shown
):
    from django.utils import translation

    from outlet.donations.currencies import amount_format

    with translation.override(language):
        assert amount_format(amount=amount, currency=currency, whole=whole) == shown


def test_a_spanish_site_shows_preset_amounts_and_receipts_in_spanish_conventions(client, settings):
    settings.LANGUAGE_CODE = "es"
    settings.DONATION_CURRENCY = "eur"
    settings.DONATION_PRESETS = [1000, 123450]
    settings.DONATION_MAX_AMOUNT = 10_000_000

    html = client.get("/donate/").content.decode()

    assert "<span>10\xa0€</span>" in html and "<span>1.234,50\xa0€</span>" in html
    donation = DonationFactory(status="paid", amount=123456, currency="eur")
    email = DonorEmail.objects.create(kind="receipt", donor=donation.donor, donation=donation)
    message = donor_email_message(email)
    assert "1.234,56\xa0€" in message.body and "1.234,56\xa0€" in message.alternatives[0][0]
