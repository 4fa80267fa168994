"""Giving in headless Chromium against localstripe: once, monthly, 3-D Secure, a decline,
then the admin, the captured mail, and cancelling from the reader account."""

from __future__ import annotations

import re
import time

import pytest

from outlet.donations import stripe_gateway
from outlet.donations.models import Donation, Gift
from tests.conftest import WorkerProcess

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def giving_site(live_server, localstripe, smtp_sink, settings):
    """The live site with localstripe's webhooks pointed at it and a real mail worker."""
    settings.SITE_URL = live_server.url
    # The CSP was computed at start-up for the default Stripe origin; allow this run's.
    settings.SECURE_CSP = {
        directive: [*sources, localstripe]
        if directive in ("script-src", "connect-src", "frame-src")
        else sources
        for directive, sources in settings.SECURE_CSP.items()
    }
    stripe_gateway.localstripe_webhook_register(site_url=live_server.url)
    worker = WorkerProcess(
        queues="mail",
        extra_env={
            "EMAIL_URL": smtp_sink.url,
            "SITE_URL": live_server.url,
            "STRIPE_API_BASE": localstripe,
        },
    )
    try:
        worker.wait_ready()
        yield live_server.url
    finally:
        worker.stop()


def fill_card(page, number: str) -> None:
    card = page.locator("#payment-element")
    card.get_by_label("Card number").fill(number)
    card.get_by_label("Expiry month").fill("12")
    card.get_by_label("Expiry year").fill("34")
    card.get_by_label("Security code").fill("123")
    card.get_by_label("Postcode").fill("10001")


def open_form(page, url: str, *, name: str, email: str) -> None:
    page.goto(url + "/donate/?source=the-big-story&utm_campaign=spring")
    page.wait_for_selector("#donate-submit:not([disabled])")
    page.get_by_label("Full name").fill(name)
    page.get_by_label("Email").fill(email)


def choose_amount(page, label: str) -> None:
    page.locator(".amounts__option").filter(has_text=re.compile(f"^{re.escape(label)}$")).click()


def give(page, label: str) -> None:
    """Press the give button. Focus first: after a full-page screenshot Chromium scrolls the
    page when the button takes the focus, which would move it from under the mouse."""
    button = page.get_by_role("button", name=re.compile(label))
    button.focus()
    button.click()


def approve_challenge(page) -> None:
    page.get_by_role("button", name="Complete authentication").click()


def wait_for_thanks(page) -> None:
    page.wait_for_url("**/donate/thanks/**", timeout=20_000)


def wait_for_mail(sink, address: str, count: int = 1, timeout: float = 30) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(sink.to(address)) < count:
        time.sleep(0.2)
    time.sleep(1.0)  # a duplicate, if any, would arrive now
    return sink.to(address)


def admin_login(page, url: str, django_user_model) -> None:
    django_user_model.objects.create_superuser("editor", "editor@example.test", "a-long-password-1")
    page.goto(url + "/admin/login/")
    page.get_by_label("Username").fill("editor")
    page.get_by_label("Password").fill("a-long-password-1")
    page.get_by_role("button", name="Log in").click()


def test_reader_gives_once_with_3ds_and_after_a_decline(
    giving_site, page, screenshot, smtp_sink, django_user_model
):
    url = giving_site
    # $25 once with a card that just works.
    open_form(page, url, name="Ada Lovelace", email="ada@example.test")
    choose_amount(page, "$25")
    fill_card(page, "4242424242424242")
    screenshot("donate-form")
    give(page, r"Give \$25\.00")
    wait_for_thanks(page)
    assert "Thank you, Ada Lovelace" in page.locator("h1").inner_text()
    screenshot("donate-thanks")

    # 3-D Secure: the bank's challenge, approved.
    open_form(page, url, name="Grace Hopper", email="grace@example.test")
    choose_amount(page, "$50")
    fill_card(page, "4000002500003155")
    give(page, r"Give \$50\.00")
    screenshot("donate-3ds-challenge")
    approve_challenge(page)
    wait_for_thanks(page)
    assert "$50.00" in page.locator("main").inner_text()

    # A card declined when charged: a clear message, then another card without retyping.
    open_form(page, url, name="Alan Turing", email="alan@example.test")
    choose_amount(page, "Other")
    page.get_by_label("Other amount").fill("30")
    fill_card(page, "4000000000000341")
    give(page, r"Give \$30\.00")
    status = page.locator("#donate-status")
    status.wait_for(state="visible")
    assert "declined" in status.inner_text()
    screenshot("donate-declined")
    assert page.get_by_label("Full name").input_value() == "Alan Turing"
    fill_card(page, "4242424242424242")
    give(page, r"Give \$30\.00")
    wait_for_thanks(page)

    for address in ("ada@example.test", "grace@example.test", "alan@example.test"):
        assert len(wait_for_mail(smtp_sink, address)) == 1, address
        assert Donation.objects.filter(donor__email=address, status="paid").count() == 1
    receipt = smtp_sink.to("ada@example.test")[0]
    text = receipt.get_body(preferencelist=("plain",)).get_content()
    assert "$25.00" in text and "ending 4242" in text

    admin_login(page, url, django_user_model)
    page.goto(url + "/admin/donations/donation/?status__exact=paid")
    screenshot("admin-donations")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 3
    for address in ("ada@example.test", "grace@example.test", "alan@example.test"):
        assert rows.filter(has_text=address).count() == 1
    donation = Donation.objects.get(donor__email="ada@example.test")
    assert (donation.source, donation.utm) == ("the-big-story", {"utm_campaign": "spring"})


def lose_the_first_answer(page, path: str) -> list[str]:
    """The request reaches our server, but its answer never reaches the browser (a dropped
    connection after Stripe charged): the page must check again, never start over."""
    seen: list[str] = []

    def handle(route):
        seen.append(route.request.url)
        if len(seen) == 1:
            route.fetch()
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**" + path, handle)
    return seen


def test_lost_answers_after_a_charge_are_checked_again_and_charge_once(
    giving_site, page, smtp_sink
):
    url = giving_site
    charges = lose_the_first_answer(page, "/donate/checkout/refresh/")
    open_form(page, url, name="Ada Lovelace", email="ada@example.test")
    choose_amount(page, "$25")
    fill_card(page, "4242424242424242")
    give(page, r"Give \$25\.00")
    status = page.locator("#donate-status")
    status.wait_for(state="visible")
    assert "nothing was charged" not in status.inner_text()
    assert "do not start a new donation" in status.inner_text()
    wait_for_thanks(page)
    assert len(charges) == 2  # the same payment asked about again, not a new checkout

    page.unroute("**/donate/checkout/refresh/")
    refreshes = lose_the_first_answer(page, "/donate/checkout/refresh/")
    open_form(page, url, name="Grace Hopper", email="grace@example.test")
    choose_amount(page, "$50")
    fill_card(page, "4000002500003155")
    give(page, r"Give \$50\.00")
    approve_challenge(page)
    wait_for_thanks(page)
    assert len(refreshes) == 2

    for address in ("ada@example.test", "grace@example.test"):
        assert Donation.objects.filter(donor__email=address).count() == 1, address
        assert Donation.objects.get(donor__email=address).status == "paid"
        assert len(wait_for_mail(smtp_sink, address)) == 1, address


def test_a_refused_security_check_says_nothing_was_charged(giving_site, page):
    """Django's CSRF refusal (an HTML 403) comes before the view: the donor is told
    plainly that nothing was charged, not asked to wait for a payment that never started."""
    page.route(
        "**/donate/checkout/intent/",
        lambda route: route.fulfill(status=403, content_type="text/html", body="<h1>403</h1>"),
    )
    open_form(page, giving_site, name="Mary Jackson", email="mj@example.test")
    choose_amount(page, "$25")
    fill_card(page, "4242424242424242")
    give(page, r"Give \$25\.00")
    status = page.locator("#donate-status")
    status.wait_for(state="visible")
    assert "nothing was charged" in status.inner_text()
    assert "do not start a new donation" not in status.inner_text()
    assert not Donation.objects.filter(donor__email="mj@example.test", status="paid").exists()


def test_monthly_donor_gives_then_cancels_from_the_reader_account(
    giving_site, page, screenshot, smtp_sink
):
    url = giving_site
    open_form(page, url, name="Katherine Johnson", email="kj@example.test")
    page.get_by_text("Monthly", exact=True).click()
    choose_amount(page, "$10")
    fill_card(page, "4242424242424242")
    give(page, r"Give \$10\.00 monthly")
    wait_for_thanks(page)

    receipts = wait_for_mail(smtp_sink, "kj@example.test")
    assert len(receipts) == 1
    gift = Gift.objects.get(donor__email="kj@example.test")
    assert gift.status == Gift.Status.ACTIVE
    assert Donation.objects.filter(gift=gift, status="paid").count() == 1

    # The receipt links to the reader account, which emails a single-use sign-in link.
    text = receipts[0].get_body(preferencelist=("plain",)).get_content()
    account_url = re.search(r"https?://\S+/account/", text).group(0)
    page.goto(account_url)
    page.get_by_label("Email address").fill("kj@example.test")
    page.get_by_role("button", name="Email me a sign-in link").click()
    page.wait_for_selector(".message--success")
    mails = wait_for_mail(smtp_sink, "kj@example.test", count=2)
    link_mail = next(m for m in mails if "sign-in link" in m["Subject"])
    text = link_mail.get_body(preferencelist=("plain",)).get_content()
    sign_in_url = re.search(r"https?://\S+/account/sign-in/\S+/", text).group(0)
    page.goto(sign_in_url)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/account/?done=signed-in")
    assert "$10.00 monthly" in page.locator("main").inner_text()
    screenshot("donate-manage")

    page.get_by_label("Change the amount (USD)").fill("15")
    page.get_by_role("button", name="Change amount").click()
    page.wait_for_selector("text=Your new amount applies")
    assert "$15.00 monthly" in page.locator("main").inner_text()
    fill_card(page, "5555555555554444")
    page.get_by_role("button", name="Update card").click()
    page.wait_for_selector("text=Your card is updated")
    assert "ending 4444" in page.locator("main").inner_text()
    gift.refresh_from_db()
    assert (gift.amount, gift.card_last4) == (1500, "4444")
    subscription = stripe_gateway.subscription_retrieve(subscription_id=gift.stripe_subscription_id)
    assert subscription["items"]["data"][0]["plan"]["amount"] == 1500

    page.get_by_role("button", name="Cancel this recurring gift").click()
    page.wait_for_selector("text=Your recurring gift is cancelled")
    screenshot("donate-manage-cancelled")

    gift.refresh_from_db()
    assert gift.status == Gift.Status.CANCELLED
    subscription = stripe_gateway.subscription_retrieve(subscription_id=gift.stripe_subscription_id)
    assert subscription["status"] == "canceled"
    mails = wait_for_mail(smtp_sink, "kj@example.test", count=5)
    subjects = [m["Subject"] for m in mails]
    assert subjects.count("You cancelled your recurring gift to The Outlet") == 1
    assert subjects.count("Your recurring gift to The Outlet has a new amount") == 1
    assert subjects.count("Your card for The Outlet has been updated") == 1


def test_the_fee_preview_speaks_the_sites_currency(live_server, page, settings):
    settings.DONATION_CURRENCY = "eur"
    page.goto(live_server.url + "/donate/")
    choose_amount(page, "€25")

    assert page.locator("#fee-amount").inner_text().startswith("€")
    assert "$" not in page.locator("#fee-amount").inner_text()
    assert re.search(r"Give €25\.00", page.locator("#donate-submit").inner_text())
