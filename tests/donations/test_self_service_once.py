"""A donor's change confirmed by email once, however often the request is repeated."""

from __future__ import annotations

import pytest

from outlet.donations import services, stripe_gateway
from outlet.donations.models import DonorEmail, Gift
from outlet.donations.services import self_service
from tests.factories import GiftFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def stripe_agrees(monkeypatch):
    monkeypatch.setattr(stripe_gateway, "plan_ensure", lambda **kw: "plan_1")
    monkeypatch.setattr(stripe_gateway, "subscription_plan_change", lambda **kw: None)
    monkeypatch.setattr(stripe_gateway, "customer_default_card_set", lambda **kw: None)
    monkeypatch.setattr(stripe_gateway, "subscription_default_card_set", lambda **kw: None)
    monkeypatch.setattr(self_service, "card_ready", lambda **kw: ("pm_1", "visa", "4444"))


def test_double_submitted_amount_change_is_confirmed_once(stripe_agrees):
    gift = GiftFactory(amount=1000)
    stale = Gift.objects.get(pk=gift.pk)  # the second request read the gift before the first wrote

    services.gift_amount_change(gift=gift, amount=2000)
    services.gift_amount_change(gift=stale, amount=2000)

    assert Gift.objects.get(pk=gift.pk).amount == 2000
    assert DonorEmail.objects.filter(kind=DonorEmail.Kind.AMOUNT_CHANGED).count() == 1


def test_repeated_card_update_is_confirmed_once(stripe_agrees):
    gift = GiftFactory()

    services.gift_card_update(gift=gift, setup_intent_id="seti_1")
    services.gift_card_update(gift=gift, setup_intent_id="seti_1")

    assert DonorEmail.objects.filter(kind=DonorEmail.Kind.CARD_UPDATED).count() == 1


def test_amount_changes_from_two_stale_pages_leave_stripe_and_record_agreeing(monkeypatch):
    """Two tabs read the gift at 10.00 and ask for 20.00 and 30.00. Whatever lands last in
    our record is what Stripe charges."""
    plans = []
    monkeypatch.setattr(stripe_gateway, "plan_ensure", lambda **kw: f"plan_{kw['amount']}")
    monkeypatch.setattr(
        stripe_gateway, "subscription_plan_change", lambda **kw: plans.append(kw["plan_id"])
    )
    gift = GiftFactory(amount=1000)
    first, second = Gift.objects.get(pk=gift.pk), Gift.objects.get(pk=gift.pk)

    services.gift_amount_change(gift=first, amount=2000)
    services.gift_amount_change(gift=second, amount=3000)

    assert plans[-1] == f"plan_{Gift.objects.get(pk=gift.pk).amount}"
    assert DonorEmail.objects.filter(kind=DonorEmail.Kind.AMOUNT_CHANGED).count() == 2
