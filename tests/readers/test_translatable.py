"""Every reader-facing word of the account pages and of the donation result pages goes
through the translation catalog (issue 24): rendered with a catalog that marks what it
translates, no word is left unmarked but the reader's own data."""

from __future__ import annotations

import pytest
from django.urls import reverse

from outlet.donations.models import Donation
from outlet.donations.services import BANK_FAILURE_MESSAGE, DECLINE_MESSAGE
from outlet.donations.tokens import checkout_token_make
from tests.factories import DonationFactory
from tests.translation_marks import catalog_marks, html_text, unmarked_words

from .conftest import signed_in

pytestmark = pytest.mark.django_db

# The reader's own data, and the newsroom's: names, newsletters and their descriptions.
DATA = ("reader@example.com", "Ada Reader", "Daily", "Weekend", "Visa", "USD", "usd",
        "Our best analysis, in your inbox.")  # fmt: skip


@pytest.fixture
def marks(monkeypatch, settings):
    catalog_marks(monkeypatch)
    return (settings.OUTLET_NAME, settings.OUTLET_POSTAL_ADDRESS,
            settings.DONATION_TAX_STATEMENT, *DATA)  # fmt: skip


def test_the_account_page_has_no_untranslated_words(monthly_reader, marks):
    monthly_reader.status = "past_due"
    monthly_reader.save()
    DonationFactory(donor=monthly_reader.donor, status="paid", paid_at="2026-10-01T10:00:00Z",
                    fee_amount=50, refunded_amount=100)  # fmt: skip
    page = signed_in("reader@example.com").get(reverse("readers:account") + "?done=amount")

    text = html_text(page.content.decode(), "main")
    assert "Payments and receipts" in text and "ending 4242" in text
    assert unmarked_words(text, data=marks) == []


def test_a_receipt_page_has_no_untranslated_words(monthly_reader, marks):
    donation = Donation.objects.get()
    Donation.objects.filter(pk=donation.pk).update(fee_amount=50, credit_amount=200)
    page = signed_in("reader@example.com").get(reverse("readers:receipt", args=[donation.pk]))

    assert unmarked_words(html_text(page.content.decode(), "main"), data=marks) == []


@pytest.mark.parametrize(
    "path",
    [
        "/account/",
        "/account/sign-in/not-a-token/",
        "/account/email/confirm/not-a-token/",
    ],
)
def test_the_sign_in_pages_have_no_untranslated_words(client, marks, path):
    page = client.get(path)

    assert unmarked_words(html_text(page.content.decode(), "main"), data=marks) == []


def test_the_link_problem_and_sent_pages_have_no_untranslated_words(client, marks):
    problem = client.post("/account/sign-in/not-a-token/")
    sent = client.post(reverse("readers:account"), {"email": "reader@example.com"})

    assert problem.status_code == 410 and sent.status_code == 200
    for page in (problem, sent):
        assert unmarked_words(html_text(page.content.decode(), "main"), data=marks) == []


def test_the_delete_page_has_no_untranslated_words(monthly_reader, marks):
    page = signed_in("reader@example.com").get(reverse("readers:data-delete"))

    assert unmarked_words(html_text(page.content.decode(), "main"), data=marks) == []


@pytest.mark.parametrize("status", ["paid", "pending", "processing", "failed", "bank failed"])
def test_the_thank_you_page_has_no_untranslated_words(client, marks, status):
    message = {"failed": DECLINE_MESSAGE, "bank failed": BANK_FAILURE_MESSAGE}.get(status, "")
    status = status.split()[-1]
    donation = DonationFactory(
        status=status,
        donor__name="Ada Reader",
        donor__email="reader@example.com",
        failure_message=message,
    )
    token = checkout_token_make(donation_id=donation.pk)
    page = client.get(reverse("donations:thanks", args=[token]))

    assert page.status_code == 200
    assert unmarked_words(html_text(page.content.decode(), "main"), data=marks) == []


def test_the_supporters_page_has_no_untranslated_words(client, marks):
    page = client.get(reverse("donations:supporters"))

    assert unmarked_words(html_text(page.content.decode(), "main"), data=marks) == []


def test_account_messages_come_from_the_catalog(monthly_reader, marks):
    browser = signed_in("reader@example.com")

    bad_email = browser.post(reverse("readers:email-change"), {"email": "not an address"})
    amount_url = reverse("readers:gift-amount", args=[monthly_reader.pk])
    bad_amount = browser.post(amount_url, {"amount": "x"})

    for page in (bad_email, bad_amount):
        assert page.status_code == 400
        error = html_text(page.content.decode(), "main")
        assert unmarked_words(error, data=marks) == []


@pytest.mark.parametrize(("language", "locale"), [("pt-br", "pt-BR"), ("es", "es"), ("en", "en")])
def test_the_card_form_tells_stripe_elements_the_pages_language(
    monthly_reader, settings, client, language, locale
):
    settings.LANGUAGE_CODE = language

    page = signed_in("reader@example.com").get(reverse("readers:account")).content.decode()
    donate = client.get(reverse("donations:donate"))

    assert 'id="card-update-form"' in page and f'data-locale="{locale}"' in page
    assert donate.context["STRIPE_LOCALE"] == locale  # for the donate page's Elements


@pytest.mark.parametrize("status", ["paid", "processing", "failed", "bank failed"])
def test_the_outcome_include_has_no_untranslated_words(marks, status):
    from django.template.loader import render_to_string

    message = BANK_FAILURE_MESSAGE if status == "bank failed" else ""
    donation = DonationFactory(
        status=status.split()[-1], donor__name="Ada Reader", failure_message=message
    )

    html = render_to_string("donations/_outcome.html", {"donation": donation})

    assert unmarked_words(html_text(html), data=marks) == []
