"""A donor's change confirmed by email once, however often the request is repeated."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from outlet.donations import services, stripe_gateway
from outlet.donations.models import DonorEmail, Gift
from outlet.donations.services import self_service
from tests.factories import GiftFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def stripe_agrees(monkeypatch):
    monkeypatch.setattr(stripe_gateway, "subscription_amount_change", lambda **kw: None)
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
    amounts = []
    monkeypatch.setattr(
        stripe_gateway, "subscription_amount_change", lambda **kw: amounts.append(kw["amount"])
    )
    gift = GiftFactory(amount=1000)
    first, second = Gift.objects.get(pk=gift.pk), Gift.objects.get(pk=gift.pk)

    services.gift_amount_change(gift=first, amount=2000)
    services.gift_amount_change(gift=second, amount=3000)

    assert amounts[-1] == Gift.objects.get(pk=gift.pk).amount
    assert DonorEmail.objects.filter(kind=DonorEmail.Kind.AMOUNT_CHANGED).count() == 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
def test_two_amount_changes_at_once_are_taken_in_turn(monkeypatch):
    """The first change is still waiting for Stripe when the second arrives: the second
    waits for the first to finish, then starts from its amount, so Stripe's last word and
    our record agree (without the row lock, the first's late Stripe call would win)."""
    gift = GiftFactory(amount=1000)
    first_at_stripe, second_at_stripe, release = (threading.Event() for _ in range(3))
    amounts = []

    def amount_change(**kw):
        if kw["amount"] == 2000:
            first_at_stripe.set()
            release.wait(10)
        else:
            second_at_stripe.set()
        amounts.append(kw["amount"])

    monkeypatch.setattr(stripe_gateway, "subscription_amount_change", amount_change)
    pages = [Gift.objects.get(pk=gift.pk), Gift.objects.get(pk=gift.pk)]  # both read 10.00

    def change(page: Gift, amount: int) -> None:
        try:
            services.gift_amount_change(gift=page, amount=amount)
        finally:
            connection.close()

    first = threading.Thread(target=change, args=(pages[0], 2000))
    second = threading.Thread(target=change, args=(pages[1], 3000))
    first.start()
    assert first_at_stripe.wait(10)
    second.start()
    assert not second_at_stripe.wait(1)  # held by the first change's row lock
    release.set()
    first.join(10)
    second.join(10)

    assert amounts == [2000, 3000]
    assert Gift.objects.get(pk=gift.pk).amount == 3000
