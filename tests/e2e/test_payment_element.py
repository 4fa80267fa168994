"""The donate page's Payment Element in Chromium over localstripe, through the development
shim (stripe-elements-shim.js) and the same donate.js production runs: the wallet button,
a redirect method's return page, a declined monthly gift, and the page at phone width."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from outlet.donations import stripe_gateway
from outlet.donations.models import Donation, Gift
from tests.e2e import test_donations
from tests.e2e.test_donations import (
    choose_amount,
    fill_card,
    give,
    open_form,
    wait_for_mail,
    wait_for_thanks,
)

pytestmark = pytest.mark.django_db(transaction=True)
giving_site = test_donations.giving_site  # the live site with localstripe and a mail worker


def test_the_wallet_button_gives_once_and_monthly(giving_site, page, smtp_sink):
    open_form(page, giving_site, name="Ada Lovelace", email="ada@example.test")
    choose_amount(page, "$25")
    page.get_by_role("button", name="Pay with test wallet").click()
    wait_for_thanks(page)
    donation = Donation.objects.get(donor__email="ada@example.test")
    assert (donation.status, donation.amount, donation.card_last4) == ("paid", 2500, "4242")

    open_form(page, giving_site, name="Grace Hopper", email="grace@example.test")
    page.get_by_text("Monthly", exact=True).click()
    choose_amount(page, "$10")
    page.get_by_role("button", name="Pay with test wallet").click()
    wait_for_thanks(page)
    gift = Gift.objects.get(donor__email="grace@example.test")
    assert gift.status == Gift.Status.ACTIVE
    assert Donation.objects.get(gift=gift).status == "paid"
    for address in ("ada@example.test", "grace@example.test"):
        assert len(wait_for_mail(smtp_sink, address)) == 1, address


def test_a_redirect_method_comes_back_to_a_page_that_asks_stripe(giving_site, page, screenshot):
    open_form(page, giving_site, name="Mary Jackson", email="mj@example.test")
    choose_amount(page, "$50")
    page.get_by_label("Test bank (redirects, like iDEAL)").check()
    give(page, r"Give \$50\.00")
    page.wait_for_url("**/donate/return/**", timeout=20_000)
    screenshot("donate-return")
    assert "Thank you, Mary Jackson" in page.locator("h1").inner_text()
    donation = Donation.objects.get(donor__email="mj@example.test")
    assert donation.status == "paid"

    # A reload reads Stripe again and charges nothing more.
    page.reload()
    assert "Thank you" in page.locator("h1").inner_text()
    assert Donation.objects.filter(donor__email="mj@example.test").count() == 1

    # The same token with another payment's id, or "succeeded" written into the address
    # of a payment that failed, shows nothing of anyone's donation.
    query = parse_qs(urlsplit(page.url).query)
    other = {"token": query["token"][0], "payment_intent": "pi_not_this_one"}
    answer = page.goto(f"{giving_site}/donate/return/?{urlencode(other)}")
    assert answer.status == 404


def test_a_declined_monthly_gift_leaves_no_subscription(giving_site, page):
    open_form(page, giving_site, name="Alan Turing", email="alan@example.test")
    page.get_by_text("Monthly", exact=True).click()
    choose_amount(page, "$10")
    fill_card(page, "4000000000000341")
    give(page, r"Give \$10\.00 monthly")
    status = page.locator("#donate-status")
    status.wait_for(state="visible")
    assert "declined" in status.inner_text()
    gift = Gift.objects.get(donor__email="alan@example.test")
    assert gift.status == Gift.Status.CANCELLED
    subscription = stripe_gateway.subscription_retrieve(subscription_id=gift.stripe_subscription_id)
    assert subscription["status"] != "active"

    # Another card, without retyping the rest: a new checkout, paid once.
    fill_card(page, "4242424242424242")
    give(page, r"Give \$10\.00 monthly")
    wait_for_thanks(page)
    assert Donation.objects.filter(donor__email="alan@example.test", status="paid").count() == 1


@pytest.mark.parametrize("width,height", [(390, 844), (1280, 900)], ids=["phone", "desktop"])
def test_the_donate_page_at_phone_and_desktop_width(giving_site, page, screenshot, width, height):
    page.set_viewport_size({"width": width, "height": height})
    page.goto(giving_site + "/donate/")
    page.wait_for_selector("#donate-submit:not([disabled])")
    wallet = page.get_by_role("button", name="Pay with test wallet")
    assert wallet.is_visible()
    screenshot(f"donate-payment-element-{width}")
    # Nothing sticks out of the page, and every payment field is labelled.
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    for label in ("Card number", "Expiry month", "Expiry year", "Security code", "Postcode"):
        assert page.locator("#payment-element").get_by_label(label).count() == 1, label
    box = wallet.bounding_box()
    assert box and box["height"] >= 44  # a tap target a thumb can hit


def test_a_checkout_with_an_incomplete_card_sends_nothing(giving_site, page):
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/checkout/" in r.url else None)
    open_form(page, giving_site, name="Ada Lovelace", email="ada@example.test")
    choose_amount(page, "$25")
    page.locator("#payment-element").get_by_label("Card number").fill("4242")
    give(page, r"Give \$25\.00")
    status = page.locator("#donate-status")
    status.wait_for(state="visible")
    assert re.search(r"incomplete", status.inner_text())
    assert requests == []  # elements.submit() stopped it before our server
    assert not Donation.objects.exists()
