"""
What a reader is told about one payment: how it ended (for the return or thank-you page,
templates/donations/_outcome.html) and where to give again after a failure (that page
and the failed-payment note link to it).

Reads only; re-exported by selectors.py.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlencode

from django.urls import reverse

from .currencies import amount_csv
from .models import Donation

Outcome = Literal["succeeded", "processing", "failed"]


def donation_outcome(*, donation: Donation) -> Outcome:
    """succeeded: paid (a refund later does not unsay it); processing: a bank debit on its
    way, or a payment Stripe has not confirmed yet (the return page reads Stripe first, so
    "pending" there means it is still being confirmed); failed: declined, failed after
    processing, or a checkout that expired."""
    if donation.status in (Donation.Status.PAID, Donation.Status.REFUNDED):
        return "succeeded"
    if donation.status in (Donation.Status.PROCESSING, Donation.Status.PENDING):
        return "processing"
    return "failed"


def donation_retry_url(*, donation: Donation) -> str:
    """The donate page (a path; callers add SITE_URL for email) prefilled with the gift's
    amount (without the fee it covered: the page offers that again), frequency and
    campaign. Nothing in it names the donation, the donor or Stripe: forwarded, it lets
    nobody act on anything, only give."""
    query = {
        "amount": amount_csv(
            amount=max(donation.amount - donation.fee_amount, 0), currency=donation.currency
        ),
        "frequency": donation.frequency,
    }
    if donation.campaign_id is not None and donation.campaign is not None:
        query["campaign"] = donation.campaign.slug
    return f"{reverse('donations:donate')}?{urlencode(query)}"
