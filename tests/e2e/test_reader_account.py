"""The reader account in headless Chromium: a monthly donor who reads one newsletter signs
in by the emailed link, subscribes to a second newsletter, changes the gift's amount,
downloads their data, signs out everywhere and deletes their data. Then axe and the Nu
Html Checker on the account's pages."""

from __future__ import annotations

import json
import re
import time

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.utils import timezone

from outlet.donations import stripe_gateway
from outlet.donations.models import Donation, Donor, Gift
from outlet.newsletters.models import ConsentRecord, Subscriber, Suppression
from outlet.readers.models import Reader
from outlet.readers.tokens import reader_token_make
from tests.e2e import test_donations
from tests.e2e.test_accessibility import WCAG_AA, describe, vnu_jar
from tests.e2e.test_donations import (
    choose_amount,
    fill_card,
    open_form,
    wait_for_mail,
    wait_for_thanks,
)
from tests.factories import (
    DonationFactory,
    GiftFactory,
    NewsletterFactory,
    SubscriberFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)

giving_site = test_donations.giving_site  # the live site, localstripe and a mail worker

EMAIL = "kj@example.test"


def sign_in_by_email(page, url: str, sink, *, nth: int) -> None:
    """Ask /account/ for a link, wait for the `nth` sign-in email, open it, press Continue."""
    page.goto(url + "/account/")
    page.get_by_label("Email address").fill(EMAIL)
    page.get_by_role("button", name="Email me a sign-in link").click()
    page.wait_for_selector(".message--success")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        links = [m for m in sink.to(EMAIL) if "sign-in link" in m["Subject"]]
        if len(links) >= nth:
            break
        time.sleep(0.2)
    assert len(links) == nth, [m["Subject"] for m in sink.to(EMAIL)]
    text = links[-1].get_body(preferencelist=("plain",)).get_content()
    link = re.search(r"https?://\S+/account/sign-in/\S+/", text).group(0)
    page.goto(link)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/account/?done=signed-in")


def test_a_monthly_donor_and_subscriber_runs_their_account(
    giving_site, page, browser, screenshot, smtp_sink
):
    url = giving_site
    daily = NewsletterFactory(name="The Daily Briefing", slug="daily")
    weekend = NewsletterFactory(name="The Weekend Read", slug="weekend")
    SubscriberFactory(email=EMAIL, newsletters=[daily])
    open_form(page, url, name="Katherine Johnson", email=EMAIL)
    page.get_by_text("Monthly", exact=True).click()
    choose_amount(page, "$10")
    fill_card(page, "4242424242424242")
    page.get_by_role("button", name=re.compile(r"Give \$10\.00 monthly")).click()
    wait_for_thanks(page)
    assert len(wait_for_mail(smtp_sink, EMAIL)) == 1  # the receipt
    gift = Gift.objects.get(donor__email=EMAIL)

    sign_in_by_email(page, url, smtp_sink, nth=1)
    main = page.locator("main")
    assert "$10.00 monthly" in main.inner_text()
    assert "The Daily Briefing" in main.inner_text()
    screenshot("account")

    # Another device signs in with its own link: the "old session" of later.
    other = browser.new_context()
    old_session = other.new_page()
    sign_in_by_email(old_session, url, smtp_sink, nth=2)

    page.get_by_role("button", name="Subscribe to The Weekend Read").click()
    page.wait_for_selector("text=You are subscribed")
    assert page.get_by_role("button", name="Unsubscribe from The Weekend Read").is_visible()
    subscriber = Subscriber.objects.get(email=EMAIL)
    assert subscriber.subscriptions.get(newsletter=weekend).confirmed_at is not None

    page.get_by_label("Change the amount (USD)").fill("15")
    page.get_by_role("button", name="Change amount").click()
    page.wait_for_selector("text=Your new amount applies")
    assert "$15.00 monthly" in main.inner_text()
    subscription = stripe_gateway.subscription_retrieve(subscription_id=gift.stripe_subscription_id)
    assert subscription["items"]["data"][0]["plan"]["amount"] == 1500

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download my data").click()
    document = json.loads(download_info.value.path().read_text(encoding="utf-8"))
    assert document["email"] == EMAIL
    assert {s["newsletter"] for s in document["newsletters"]["subscriptions"]} == {
        "The Daily Briefing",
        "The Weekend Read",
    }
    assert document["donations"]["gifts"][0]["amount"] == 1500
    assert document["donations"]["donations"][0]["status"] == "paid"

    page.get_by_role("button", name="Sign out everywhere").click()
    page.wait_for_selector("text=You are signed out everywhere")
    old_session.goto(url + "/account/")
    assert old_session.get_by_role("button", name="Email me a sign-in link").is_visible()
    assert EMAIL not in old_session.locator("main").inner_text()
    screenshot("account-signed-out")
    other.close()

    sign_in_by_email(page, url, smtp_sink, nth=3)
    page.get_by_role("link", name="Delete my data").click()
    page.get_by_label(re.compile("I understand")).check()
    screenshot("account-delete")
    page.get_by_role("button", name="Delete my data").click()
    page.wait_for_selector("text=Your data is deleted")

    assert not Subscriber.objects.filter(email=EMAIL).exists()
    assert not ConsentRecord.objects.exists()
    assert Suppression.objects.filter(reason="erased").count() == 1
    assert not Donor.objects.filter(email=EMAIL).exists()
    donor = Donor.objects.get()
    assert donor.name == "" and donor.email is None
    donation = Donation.objects.get()
    assert donation.status == "paid" and donation.public_name == ""  # kept for the receipt
    gift.refresh_from_db()
    assert gift.status == Gift.Status.CANCELLED
    subscription = stripe_gateway.subscription_retrieve(subscription_id=gift.stripe_subscription_id)
    assert subscription["status"] == "canceled"
    assert not Reader.objects.exists()


@pytest.fixture
def signed_in_pages(live_server, settings, page):
    """A donor and subscriber signed in; the account's pages, by name."""
    settings.SITE_URL = live_server.url
    daily = NewsletterFactory(name="The Daily Briefing", slug="daily")
    NewsletterFactory(name="The Weekend Read", slug="weekend")
    gift = GiftFactory(donor__email=EMAIL, donor__name="Katherine Johnson")
    donation = DonationFactory(
        donor=gift.donor, gift=gift, frequency="month", amount=1000, status="paid",
        paid_at=timezone.now(),
    )  # fmt: skip
    SubscriberFactory(email=EMAIL, newsletters=[daily])
    reader = Reader.objects.create(email=EMAIL)
    used = reader_token_make(purpose="sign-in", reader=reader)
    fresh = reader_token_make(purpose="sign-in", reader=reader)
    change = reader_token_make(purpose="email-change", reader=reader, email="new@example.org")
    signed_out = {
        "sign in": "/account/",
        "sign-in button": f"/account/sign-in/{fresh}/",
        "new address button": f"/account/email/confirm/{change}/",
    }
    page.goto(live_server.url + f"/account/sign-in/{used}/")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/account/?done=signed-in")
    signed_in = {
        "account": "/account/?done=signed-in",
        "receipt": f"/account/receipts/{donation.pk}/",
        "delete": "/account/data/delete/",
    }
    return live_server.url, signed_in, signed_out, used


def test_account_pages_pass_axe_wcag_aa(signed_in_pages, page, browser):
    url, signed_in, signed_out, used = signed_in_pages
    axe = Axe()
    failures = {}

    def check(target, name: str, path: str) -> None:
        target.goto(url + path)
        assert target.locator("h1").count() == 1, f"{name}: one h1 per page"
        results = axe.run(
            target,
            options={"runOnly": {"type": "tag", "values": WCAG_AA}, "resultTypes": ["violations"]},
        )
        if results.response["violations"]:
            failures[name] = describe(results.response["violations"])

    for name, path in signed_in.items():
        check(page, name, path)
        assert page.get_by_role("link", name="Sign in").count() == 0, name
    page.goto(url + "/account/")
    assert page.get_by_role("button", name="Sign out everywhere").is_visible()
    anonymous = browser.new_context().new_page()
    for name, path in signed_out.items():
        check(anonymous, name, path)
    anonymous.goto(url + f"/account/sign-in/{used}/")
    anonymous.get_by_role("button", name="Continue").click()  # already used
    results = axe.run(anonymous, options={"runOnly": {"type": "tag", "values": WCAG_AA}})
    if results.response["violations"]:
        failures["used link"] = describe(results.response["violations"])
    assert not failures, "\n".join(f"{name}:\n{text}" for name, text in failures.items())


def test_account_pages_are_valid_html(signed_in_pages, page, tmp_path):
    import subprocess

    url, signed_in, signed_out, _ = signed_in_pages
    jar = vnu_jar()
    files = []
    for name, path in {**signed_in, **signed_out}.items():
        response = page.goto(url + path)
        assert response is not None and response.ok, name
        if name in signed_in:
            assert b"Email me a sign-in link" not in response.body(), name
        file = tmp_path / f"{name.replace(' ', '-')}.html"
        file.write_bytes(response.body())
        files.append(file)
    result = subprocess.run(
        ["java", "-jar", str(jar), "--errors-only", "--format", "json", *map(str, files)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    messages = json.loads(result.stderr)["messages"]
    errors = [
        f"{m.get('url', '').rsplit('/', 1)[-1]}:{m.get('lastLine')}: {m.get('message')}"
        for m in messages
        if m.get("type") in ("error", "non-document-error")
    ]
    assert not errors, "\n".join(errors)
