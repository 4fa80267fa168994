"""The donate page's card form as a reader meets it with localstripe (`make run`): every
field says what it wants, a four-digit year is taken, and a request Stripe refuses as
malformed is explained in words a reader understands."""

from __future__ import annotations

import re

import pytest

from outlet.donations.models import Donation
from tests.e2e import test_donations
from tests.e2e.test_donations import (
    choose_amount,
    open_form,
    wait_for_thanks,
)

pytestmark = pytest.mark.django_db(transaction=True)
giving_site = test_donations.giving_site  # the live site with localstripe and a mail worker

# For each card input: does its placeholder fit inside it?
PLACEHOLDERS_CUT = """() => {
  const context = document.createElement("canvas").getContext("2d");
  const inputs = document.querySelectorAll("#payment-element input[type=text]");
  return Array.from(inputs).filter((input) => {
    const style = getComputedStyle(input);
    context.font = style.font;
    const room = input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    return context.measureText(input.placeholder).width > room + 0.5;
  }).map((input) => input.placeholder);
}"""


def card_field(page, name: str):
    return page.locator("#payment-element").get_by_label(name)


def test_every_card_field_shows_its_whole_placeholder(giving_site, page, screenshot):
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(giving_site + "/donate/")
        page.wait_for_selector("#donate-submit:not([disabled])")
        inputs = page.locator("#payment-element input[type=text]")
        assert inputs.count() == 5
        screenshot(f"donate-card-fields-{width}")
        assert page.evaluate(PLACEHOLDERS_CUT) == [], width
        for label in ("Card number", "Expiry month", "Expiry year", "Security code", "Postcode"):
            assert card_field(page, label).count() == 1, label


def test_a_four_digit_expiry_year_is_taken(giving_site, page):
    open_form(page, giving_site, name="Ada Lovelace", email="ada@example.test")
    choose_amount(page, "$25")
    card_field(page, "Card number").fill("4242424242424242")
    card_field(page, "Expiry month").fill("12")
    card_field(page, "Expiry year").fill("2034")
    card_field(page, "Security code").fill("123")
    card_field(page, "Postcode").fill("10001")
    page.get_by_role("button", name=re.compile(r"Give \$25\.00")).click()

    wait_for_thanks(page)
    assert Donation.objects.get(donor__email="ada@example.test").status == "paid"


def test_a_malformed_request_is_explained_in_plain_words(giving_site, page, localstripe):
    page.route(
        re.compile(r".*/v1/payment_intents/.*/confirm.*"),
        lambda route: route.fulfill(
            status=400,
            content_type="application/json",
            body='{"error": {"type": "invalid_request_error", "message": "Bad request"}}',
        ),
    )
    open_form(page, giving_site, name="Ada Lovelace", email="ada@example.test")
    choose_amount(page, "$25")
    card_field(page, "Card number").fill("4242424242424242")
    card_field(page, "Expiry month").fill("12")
    card_field(page, "Expiry year").fill("34")
    card_field(page, "Security code").fill("123")
    card_field(page, "Postcode").fill("10001")
    page.get_by_role("button", name=re.compile(r"Give \$25\.00")).click()

    status = page.locator("#donate-status")
    status.wait_for(state="visible")
    assert "Bad request" not in status.inner_text()
    assert "card details" in status.inner_text()
    assert "nothing was charged" in status.inner_text()


@pytest.mark.parametrize(
    "fault",
    [
        lambda route: route.abort("connectionreset"),
        lambda route: route.fulfill(
            status=500,
            content_type="application/json",
            body='{"error": {"type": "api_error", "message": "Something went wrong"}}',
        ),
    ],
    ids=["connection-lost", "server-fault"],
)
def test_a_payment_service_fault_is_not_blamed_on_the_card_details(
    giving_site, page, localstripe, fault
):
    """A lost connection or a fault at Stripe says so; the reader is not sent to retype a
    card whose details were never the problem."""
    page.route(re.compile(r".*/v1/payment_intents/.*/confirm.*"), fault)
    open_form(page, giving_site, name="Ada Lovelace", email="ada@example.test")
    choose_amount(page, "$25")
    card_field(page, "Card number").fill("4242424242424242")
    card_field(page, "Expiry month").fill("12")
    card_field(page, "Expiry year").fill("34")
    card_field(page, "Security code").fill("123")
    card_field(page, "Postcode").fill("10001")
    page.get_by_role("button", name=re.compile(r"Give \$25\.00")).click()

    status = page.locator("#donate-status")
    status.wait_for(state="visible")
    assert "card details" not in status.inner_text()
    assert "could not reach the payment service" in status.inner_text()
    assert "nothing was charged" in status.inner_text()
