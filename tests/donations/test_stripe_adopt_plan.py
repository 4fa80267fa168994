"""What a subscription made elsewhere becomes here (adoption_plan, a pure function)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from outlet.donations.models import Gift
from outlet.donations.services import adoption_filter_parse, adoption_plan
from outlet.donations.stripe_objects import SubscriptionFacts

FACTS = SubscriptionFacts(
    id="sub_1",
    status="active",
    amount=1500,
    currency="usd",
    interval="month",
    customer_id="cus_1",
    metadata={"campaign": "spring"},
    latest_invoice=None,
    price_id="price_1",
    product_id="prod_1",
    customer_email=" Donor@Example.org ",
)


@pytest.fixture(autouse=True)
def _site_currency(settings):
    settings.DONATION_CURRENCY = "usd"


@pytest.mark.parametrize(
    ("stripe_status", "status"),
    [
        ("active", Gift.Status.ACTIVE),
        ("trialing", Gift.Status.ACTIVE),  # runs; its first charge comes when the trial ends
        ("past_due", Gift.Status.PAST_DUE),
        ("unpaid", Gift.Status.PAST_DUE),  # Stripe stopped retrying but did not cancel
        ("incomplete", Gift.Status.INCOMPLETE),  # waits for a first payment
        ("canceled", Gift.Status.CANCELLED),  # kept for the donor's history
    ],
)
def test_each_stripe_status_has_a_meaning_here(stripe_status, status):
    plan = adoption_plan(replace(FACTS, status=stripe_status))
    assert (plan.skip, plan.status, plan.email) == ("", status, "donor@example.org")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"status": "incomplete_expired"}, "never succeeded"),
        ({"status": "paused"}, "paused"),
        ({"currency": "eur"}, "currency EUR is not the site's (USD)"),
        ({"interval": "week"}, "every 1 week"),
        ({"interval_count": 3}, "every 3 month"),
        ({"items_count": 2}, "2 prices"),
        ({"amount": 0}, "amount 0"),
        ({"customer_email": ""}, "has no email"),
        # Stripe takes up to 512 characters and checks little; a donor's address here is
        # an address, and at most 254 characters (the column), or the run would stop.
        ({"customer_email": "Friends of the paper"}, "not an email address"),
        ({"customer_email": "a" * 250 + "@example.org"}, "not an email address"),
    ],
)
def test_what_the_site_cannot_hold_is_skipped_with_its_reason(changes, reason):
    plan = adoption_plan(replace(FACTS, **changes))
    assert reason in plan.skip and not plan.status


def test_filters_match_prices_products_and_metadata():
    assert adoption_filter_parse().matches(FACTS)
    assert adoption_filter_parse(prices=["price_1", "price_2"]).matches(FACTS)
    assert not adoption_filter_parse(prices=["price_2"]).matches(FACTS)
    assert adoption_filter_parse(products=["prod_1"], metadata=["campaign=spring"]).matches(FACTS)
    assert not adoption_filter_parse(metadata=["campaign=autumn"]).matches(FACTS)
    with pytest.raises(ValueError, match="KEY=VALUE"):
        adoption_filter_parse(metadata=["campaign"])
