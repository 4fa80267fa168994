"""The donate page in currencies with 0, 2 and 3 decimals: the button says what the card
is charged, and the card is charged what the reader typed (localstripe)."""

from __future__ import annotations

import re

import pytest

from outlet.donations import stripe_gateway
from outlet.donations.models import Donation
from tests.e2e import test_donations
from tests.e2e.test_donations import (
    choose_amount,
    fill_card,
    open_form,
    wait_for_thanks,
)

pytestmark = pytest.mark.django_db(transaction=True)
giving_site = test_donations.giving_site  # the live site with localstripe and a mail worker


def test_a_yen_gift_is_charged_in_yen_as_typed(giving_site, page, settings, screenshot):
    settings.DONATION_CURRENCY = "jpy"
    settings.DONATION_PRESETS = [1000, 5000, 10000]
    settings.DONATION_MIN_AMOUNT = 100
    settings.DONATION_MAX_AMOUNT = 1_000_000
    open_form(page, giving_site, name="Sei Shonagon", email="sei@example.test")
    choose_amount(page, "¥5,000")
    assert re.search(r"Give ¥5,000$", page.locator("#donate-submit").inner_text())

    choose_amount(page, "Other")
    page.get_by_label("Other amount").fill("3000")
    assert re.search(r"Give ¥3,000$", page.locator("#donate-submit").inner_text())
    # A full-page screenshot resizes the page: taken between filling the card and the
    # click, it left the click on nothing once the donate grid's columns could shrink.
    screenshot("donate-yen")
    fill_card(page, "4242424242424242")
    page.get_by_role("button", name=re.compile(r"Give ¥3,000")).click()
    wait_for_thanks(page)

    donation = Donation.objects.get(donor__email="sei@example.test")
    assert (donation.amount, donation.currency, donation.status) == (3000, "jpy", "paid")
    charged = stripe_gateway.payment_intent_retrieve(
        payment_intent_id=donation.stripe_payment_intent_id
    )
    assert (charged["amount"], charged["currency"]) == (3000, "jpy")
    assert "¥3,000" in page.locator("main").inner_text()


@pytest.mark.parametrize(
    ("currency", "presets", "preset", "button", "typed", "typed_button"),
    [
        ("usd", [1250, 2500], "$12.50", "Give $12.50", "30.5", "Give $30.50"),
        ("eur", [1000, 2500], "€10", "Give €10.00", "12.25", "Give €12.25"),
        ("krw", [10000, 50000], "₩50,000", "Give ₩50,000", "20000", "Give ₩20,000"),
        ("bhd", [5000, 12500], "BHD12.500", "Give BHD 12.500", "7.25", "Give BHD 7.250"),
    ],
)
def test_the_button_says_what_the_card_will_be_charged(
    live_server, page, settings, currency, presets, preset, button, typed, typed_button
):
    settings.DONATION_CURRENCY = currency
    settings.DONATION_PRESETS = presets
    page.goto(live_server.url + "/donate/")

    choose_amount(page, preset)
    assert page.locator("#donate-submit").inner_text().replace("\xa0", " ") == button
    choose_amount(page, "Other")
    page.get_by_label("Other amount").fill(typed)
    assert page.locator("#donate-submit").inner_text().replace("\xa0", " ") == typed_button
