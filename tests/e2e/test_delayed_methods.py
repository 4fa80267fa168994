"""A bank debit (SEPA Direct Debit, ACH, Bacs) given in Chromium over localstripe, through the
development shim's "test bank debit" and the same donate.js production runs: the payment
stays processing (no receipt) until Stripe's signed webhook says it succeeded (the receipt,
once) or failed (a short note whose link opens the donate page prefilled, no receipt)."""

from __future__ import annotations

import re

import pytest

from outlet.donations.models import Donation, DonorEmail
from tests.donations import stripe_events as se
from tests.e2e import test_donations
from tests.e2e.test_donations import choose_amount, give, open_form, wait_for_mail

pytestmark = pytest.mark.django_db(transaction=True)
giving_site = test_donations.giving_site  # the live site with localstripe and a mail worker

DEBIT = "Test bank debit (settles later, like SEPA)"


def give_by_bank_debit(page, url: str, *, name: str, email: str, amount: str) -> Donation:
    """Give `amount` by the test bank debit; the thank-you page says it is being processed."""
    open_form(page, url, name=name, email=email)
    choose_amount(page, "Other")
    page.get_by_label("Other amount").fill(amount)
    page.get_by_label(DEBIT).check()
    give(page, rf"Give \${re.escape(amount)}\.00")
    page.wait_for_url("**/donate/thanks/**", timeout=20_000)
    assert_says_processing(page)
    donation = Donation.objects.get(donor__email=email)
    assert donation.status == Donation.Status.PROCESSING
    assert donation.amount == int(amount) * 100
    assert not DonorEmail.objects.filter(donation=donation).exists()
    return donation


def assert_says_processing(page) -> None:
    text = page.locator("main").inner_text()
    assert page.locator("h1").inner_text() == "Your gift is being processed…", text
    assert "few working days" in text and "no need to give again" in text.lower()
    assert "Thank you, " not in text  # not "received": nothing is through yet
    assert "did not go through" not in text


def return_page(url: str, thanks: str, donation: Donation) -> str:
    """Where Stripe brings back a reader whose bank debit went through a bank's page (as a
    redirect method does): the checkout's token and the PaymentIntent's id."""
    token = thanks.rstrip("/").rsplit("/", 1)[-1]
    return f"{url}/donate/return/?token={token}&payment_intent={donation.stripe_payment_intent_id}"


def no_mail_for(sink, address: str) -> bool:
    return wait_for_mail(sink, address, timeout=2) == []


def test_a_bank_debit_is_processing_then_succeeds_by_signed_webhook(
    giving_site, page, client, screenshot, smtp_sink
):
    page.set_viewport_size({"width": 390, "height": 844})
    donation = give_by_bank_debit(
        page, giving_site, name="Ada Lovelace", email="ada@example.test", amount="40"
    )
    thanks = page.url
    screenshot("donate-processing-390")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert no_mail_for(smtp_sink, "ada@example.test")  # no receipt before the money is there

    # Back through a bank's page instead: the return page reads Stripe and says the same.
    page.goto(return_page(giving_site, thanks, donation))
    assert_says_processing(page)
    screenshot("donate-return-processing-390")
    assert Donation.objects.get(pk=donation.pk).status == Donation.Status.PROCESSING

    # Days later Stripe says it succeeded, twice (Stripe repeats itself): one receipt.
    for _ in range(2):
        answer = se.post_event(client, se.payment_intent_succeeded_2017(donation))
        assert answer.status_code == 200
    donation.refresh_from_db()
    assert donation.status == Donation.Status.PAID
    receipts = wait_for_mail(smtp_sink, "ada@example.test")
    assert len(receipts) == 1
    assert receipts[0]["Subject"].startswith("Your receipt")
    assert "$40.00" in receipts[0].get_body(preferencelist=("plain",)).get_content()

    page.goto(thanks)
    text = page.locator("main").inner_text()
    assert "Thank you, Ada Lovelace" in text and "$40.00" in text
    assert "processing" not in text.lower()


def test_a_bank_debit_that_fails_later_sends_a_note_whose_link_gives_again(
    giving_site, page, client, smtp_sink
):
    donation = give_by_bank_debit(
        page, giving_site, name="Grace Hopper", email="grace@example.test", amount="35"
    )
    thanks = page.url

    for _ in range(2):
        answer = se.post_event(client, se.payment_intent_failed_2017(donation))
        assert answer.status_code == 200
    donation.refresh_from_db()
    assert donation.status == Donation.Status.FAILED

    notes = wait_for_mail(smtp_sink, "grace@example.test")
    assert len(notes) == 1  # the short note, once; no receipt
    assert "did not go through" in notes[0]["Subject"]
    body = notes[0].get_body(preferencelist=("plain",)).get_content()
    link = re.search(r"https?://\S+/donate/\?\S+", body).group(0)
    assert link == f"{giving_site}/donate/?amount=35.00&frequency=once"
    assert not DonorEmail.objects.filter(donation=donation, kind=DonorEmail.Kind.RECEIPT).exists()

    # The thank-you page no longer says it is on its way.
    page.goto(thanks)
    text = page.locator("main").inner_text()
    assert "did not go through" in text and "processing" not in text.lower()
    assert page.get_by_role("link", name="Try again").get_attribute("href") == (
        "/donate/?amount=35.00&frequency=once"
    )

    # The note's link: the donate page with the same amount and frequency, ready to give.
    page.goto(link)
    page.wait_for_selector("#donate-submit:not([disabled])")
    assert page.get_by_label("Other amount").input_value() == "35.00"
    assert page.locator("input[name=frequency][value=once]").is_checked()
    assert page.get_by_role("button", name=re.compile(r"Give \$35\.00$")).is_visible()
    assert Donation.objects.filter(donor__email="grace@example.test").count() == 1
