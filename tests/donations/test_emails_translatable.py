"""Every donor, reader and editor email goes through the translation catalog (issue 24):
subject, plain text and HTML, rendered in the language recipient_language chooses."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.conf import settings

from outlet.donations import emails
from outlet.donations.models import DonorEmail, Refund
from outlet.readers import emails as reader_emails
from outlet.readers.models import Reader
from tests.factories import DonationFactory, DonorFactory, GiftFactory
from tests.translation_marks import catalog_marks, html_text, unmarked_words

pytestmark = pytest.mark.django_db

DATA = ("Ada Reader", "ada@example.test", "new@example.test", "Visa", "re_failed1",
        "insufficient_funds", "needs_response")  # fmt: skip


@pytest.fixture
def marks(monkeypatch):
    catalog_marks(monkeypatch)
    return (settings.OUTLET_NAME, settings.OUTLET_POSTAL_ADDRESS,
            settings.DONATION_TAX_STATEMENT, *DATA)  # fmt: skip


def assert_all_marked(message, data) -> None:
    assert message.subject.startswith("«"), message.subject
    assert unmarked_words(message.body, data=data) == [], message.body
    html = message.alternatives[0][0]
    assert unmarked_words(html_text(html), data=data) == [], html


def donor_emails():
    donor = DonorFactory(name="Ada Reader", email="ada@example.test")
    paid = datetime(2026, 1, 31, 9, tzinfo=UTC)
    gift = GiftFactory(donor=donor, interval="year")
    once = DonationFactory(donor=donor, status="paid", paid_at=paid, fee_amount=80,
                           credit_amount=100)  # fmt: skip
    renewal = DonationFactory(donor=donor, gift=gift, frequency="year", status="paid", paid_at=paid)
    yield DonorEmail.objects.create(kind="receipt", donor=donor, donation=once)
    yield DonorEmail.objects.create(kind="receipt", donor=donor, donation=renewal, dedupe_key="2")
    for kind in ("past_due", "gift_cancelled", "amount_changed", "card_updated",
                 "action_required"):  # fmt: skip
        yield DonorEmail.objects.create(kind=kind, donor=donor, gift=gift)
    for reason in ("payment_failed", "staff", "other"):
        ended = GiftFactory(donor=donor, status="cancelled", end_reason=reason)
        yield DonorEmail.objects.create(kind="gift_ended", donor=donor, gift=ended)


def test_every_donor_email_is_translated_whole(marks):
    sent = 0
    for email in donor_emails():
        assert_all_marked(emails.donor_email_message(email), marks)
        sent += 1
    assert sent == 10


def test_the_editors_alerts_are_translated_whole(marks):
    donation = DonationFactory(status="paid", donor__email="ada@example.test",
                               dispute_status="needs_response", disputed_amount=2500)  # fmt: skip
    refund = Refund.objects.create(donation=donation, stripe_refund_id="re_failed1", amount=1000,
                                   currency="usd", failure_reason="insufficient_funds")  # fmt: skip

    for message in (
        emails.dispute_opened_message(donation=donation, recipients=["editor@example.test"]),
        emails.refund_failed_message(refund=refund, recipients=["editor@example.test"]),
    ):
        assert_all_marked(message, marks)


def test_every_reader_email_is_translated_whole(marks):
    reader = Reader.objects.create(email="ada@example.test")

    for message in (
        reader_emails.sign_in_email(reader=reader, token="t"),
        reader_emails.email_change_email(reader=reader, email="new@example.test", token="t"),
        reader_emails.email_change_notice_email(
            old_email="ada@example.test", new_email="new@example.test", done=False
        ),
        reader_emails.email_change_notice_email(
            old_email="ada@example.test", new_email="new@example.test", done=True
        ),
    ):
        assert_all_marked(message, marks)


def test_without_a_catalog_the_subject_is_the_english_text():
    donation = DonationFactory(status="paid")
    email = DonorEmail.objects.create(kind="receipt", donor=donation.donor, donation=donation)

    subject = emails.donor_email_message(email).subject

    assert subject == f"Your receipt: thank you for supporting {settings.OUTLET_NAME}"


def test_an_email_is_written_in_the_language_recipient_language_chooses(monkeypatch):
    """The one place that picks an email's language decides its dates and amounts too."""
    monkeypatch.setattr(emails, "recipient_language", lambda *, obj=None: "es")
    monkeypatch.setattr(reader_emails, "recipient_language", lambda *, obj=None: "es")
    donation = DonationFactory(status="paid", amount=123456, currency="eur",
                               paid_at=datetime(2026, 2, 28, 12, tzinfo=UTC))  # fmt: skip
    email = DonorEmail.objects.create(kind="receipt", donor=donation.donor, donation=donation)

    message = emails.donor_email_message(email)
    sign_in = reader_emails.sign_in_email(reader=Reader.objects.create(email="a@b.test"), token="t")

    assert "28 de febrero de 2026" in message.body and "1.234,56\xa0€" in message.body
    assert '<html lang="es">' in message.alternatives[0][0]
    assert '<html lang="es">' in sign_in.alternatives[0][0]


def test_the_bank_debit_emails_are_translated_whole(marks):
    """A failed debit's note, a SEPA receipt with its mandate, a renewal by debit that
    failed: every word through the catalog."""
    donor = DonorFactory(name="Ada Reader", email="ada@example.test")
    paid = datetime(2026, 1, 31, 9, tzinfo=UTC)
    debit = {"payment_method_type": "sepa_debit", "card_brand": "", "card_last4": "3000"}
    failed = DonationFactory(donor=donor, status="failed", **debit)
    receipted = DonationFactory(donor=donor, status="paid", paid_at=paid,
                                mandate_reference="mandate_1Reader42", **debit)  # fmt: skip
    gift = GiftFactory(donor=donor)
    renewal = DonationFactory(donor=donor, gift=gift, frequency="month", status="failed", **debit)
    data = (*marks, "mandate_1Reader42")

    for email in (
        DonorEmail.objects.create(kind="payment_failed", donor=donor, donation=failed),
        DonorEmail.objects.create(kind="receipt", donor=donor, donation=receipted),
        DonorEmail.objects.create(kind="past_due", donor=donor, gift=gift, donation=renewal),
    ):
        assert_all_marked(emails.donor_email_message(email), data)
