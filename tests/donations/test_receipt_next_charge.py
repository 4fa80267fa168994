"""A recurring gift's receipt names the next charge date and a plain way to cancel; the
account's amount box starts with the gift's current amount."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from outlet.donations.emails import donor_email_message
from outlet.donations.models import Donation, DonorEmail, Gift
from tests.factories import DonationFactory, DonorFactory, GiftFactory
from tests.readers.conftest import signed_in

pytestmark = pytest.mark.django_db
JAN_31 = datetime(2026, 1, 31, 9, tzinfo=UTC)


def paid(gift: Gift | None, when: datetime, **fields) -> Donation:
    return DonationFactory(
        donor=gift.donor if gift else DonorFactory(),
        gift=gift,
        frequency=gift.interval if gift else "once",
        status=Donation.Status.PAID,
        paid_at=when,
        **fields,
    )


def receipt_of(donation: Donation) -> tuple[str, str]:
    email = DonorEmail.objects.create(kind="receipt", donor=donation.donor, donation=donation)
    message = donor_email_message(email)
    return message.body, message.alternatives[0].content


@pytest.mark.parametrize(
    ("interval", "first", "this", "next_charge"),
    [
        ("month", JAN_31, None, "February 28, 2026"),
        ("month", JAN_31, datetime(2026, 2, 28, 9, tzinfo=UTC), "March 31, 2026"),
        ("year", datetime(2026, 3, 10, 9, tzinfo=UTC), None, "March 10, 2027"),
    ],
)
def test_a_recurring_receipt_names_the_next_charge_and_how_to_cancel(
    interval, first, this, next_charge
):
    gift = GiftFactory(interval=interval)
    donation = paid(gift, first)
    if this is not None:
        donation = paid(gift, this)

    text, html = receipt_of(donation)

    assert f"Next payment: {next_charge}" in text
    assert next_charge in html
    assert f"/account/#gift-{gift.pk}" in text and f"/account/#gift-{gift.pk}" in html
    assert "cancel" in text.lower() and "cancel" in html.lower()


def test_a_one_time_receipt_promises_no_next_charge():
    text, html = receipt_of(paid(None, datetime(2026, 1, 5, tzinfo=UTC)))

    assert "Next payment" not in text and "Next payment" not in html


def test_a_receipt_of_a_gift_since_cancelled_promises_no_next_charge():
    gift = GiftFactory(status=Gift.Status.CANCELLED)
    text, _ = receipt_of(paid(gift, datetime(2026, 1, 5, tzinfo=UTC)))

    assert "Next payment" not in text


@pytest.mark.parametrize(
    ("amount", "currency", "value", "step"),
    [(1250, "usd", "12.50", "0.01"), (5000, "jpy", "5000", "1"), (12500, "bhd", "12.50", "0.01")],
)
def test_the_account_amount_box_starts_with_the_current_amount(amount, currency, value, step):
    gift = GiftFactory(
        donor=DonorFactory(email="reader@example.com"), amount=amount, currency=currency
    )

    page = signed_in("reader@example.com").get(reverse("readers:account")).content.decode()

    box = (
        page.split(f'id="amount-{gift.pk}"')[0].rsplit("<input", 1)[1]
        + page.split(f'id="amount-{gift.pk}"')[1].split(">", 1)[0]
    )
    assert f'value="{value}"' in box
    assert f'step="{step}"' in box
