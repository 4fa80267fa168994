"""A checkout the reader left before Stripe's charge step (the card form refused, the tab
closed) is not a donation: the admin's list and the donor's data download do not show it
as "Pending", and it expires as abandoned."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from outlet.donations import services, stripe_gateway
from outlet.donations.models import Donation, Gift
from tests.factories import DonationFactory, DonorFactory, GiftFactory
from tests.readers.conftest import signed_in

pytestmark = pytest.mark.django_db


def unfinished(*, age: timedelta = timedelta(0), **fields) -> Donation:
    """A checkout whose card never reached our charge step: no card, no payment."""
    fields = {"card_brand": "", "card_last4": "", **fields}
    donation = DonationFactory(
        status=Donation.Status.PENDING, stripe_payment_intent_id=None, **fields
    )
    Donation.objects.filter(pk=donation.pk).update(created_at=timezone.now() - age)
    return donation


@pytest.fixture
def editor(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("editor", "e@x.test", "pw"))
    return client


def test_the_admin_list_does_not_show_an_unfinished_checkout(editor):
    left = unfinished(donor=DonorFactory(email="left@example.test"))
    DonationFactory(status=Donation.Status.PAID, donor=DonorFactory(email="paid@example.test"))

    page = editor.get("/admin/donations/donation/").content.decode()

    assert "paid@example.test" in page
    assert "left@example.test" not in page
    asked = editor.get(f"/admin/donations/donation/?status__exact={left.status}")
    assert "left@example.test" in asked.content.decode()  # still there when asked for


def test_the_data_download_calls_an_unfinished_checkout_abandoned(settings):
    donor = DonorFactory(email="reader@example.com")
    unfinished(donor=donor)
    paid = DonationFactory(donor=donor, status=Donation.Status.PAID)
    gift = GiftFactory(donor=donor, status=Gift.Status.INCOMPLETE, stripe_subscription_id=None)
    unfinished(donor=donor, gift=gift, frequency="month")

    response = signed_in("reader@example.com").get("/account/data/")
    data = json.loads(
        b"".join(response.streaming_content) if response.streaming else response.content
    )
    donations = data["donations"]["donations"]
    gifts = data["donations"]["gifts"]

    assert sorted(d["status"] for d in donations) == ["abandoned", "abandoned", "paid"]
    assert [d["receipt_number"] for d in donations if d["status"] == "paid"] == [paid.pk]
    assert [g["status"] for g in gifts] == ["abandoned"]
    assert "pending" not in json.dumps(data["donations"])


def test_unfinished_checkouts_expire_as_abandoned_once(settings):
    from outlet.donations.tasks import checkouts_abandoned_expire_task

    settings.DONATION_CHECKOUT_EXPIRY_HOURS = 24
    old = unfinished(age=timedelta(hours=25))
    gift = GiftFactory(status=Gift.Status.INCOMPLETE, stripe_subscription_id=None)
    old_monthly = unfinished(age=timedelta(hours=25), gift=gift, frequency="month")
    recent = unfinished(age=timedelta(hours=1))
    charging = unfinished(age=timedelta(hours=25), card_last4="4242")  # reached the charge
    paid = DonationFactory(status=Donation.Status.PAID)
    Donation.objects.filter(pk=paid.pk).update(created_at=timezone.now() - timedelta(days=3))

    checkouts_abandoned_expire_task.apply()
    checkouts_abandoned_expire_task.apply()  # a repeat changes nothing more

    status = dict(Donation.objects.values_list("pk", "status"))
    assert status[old.pk] == status[old_monthly.pk] == Donation.Status.ABANDONED
    assert status[recent.pk] == status[charging.pk] == Donation.Status.PENDING
    assert status[paid.pk] == Donation.Status.PAID
    gift.refresh_from_db()
    assert gift.status == Gift.Status.CANCELLED


@pytest.mark.parametrize("frequency", ["once", "month"])
def test_an_expired_checkout_is_never_charged_later(monkeypatch, frequency):
    """The page, left open past the expiry, submits its checkout again: the answer says
    nothing was charged, and Stripe is not asked for a payment."""
    gift = None
    if frequency != "once":
        gift = GiftFactory(status=Gift.Status.INCOMPLETE, stripe_subscription_id=None)
    donation = unfinished(
        age=timedelta(days=2), gift=gift, frequency=frequency, checkout_key="e" * 32
    )
    services.checkouts_abandoned_expire()
    creates = ("customer_create", "payment_intent_create_deferred", "subscription_create_deferred")
    for name in creates:
        monkeypatch.setattr(stripe_gateway, name, lambda **kw: pytest.fail("Stripe called"))

    step = services.checkout_intent_create(
        email=donation.donor.email, name="Late", amount=donation.amount, cover_fee=False,
        frequency=frequency, ip="203.0.113.9", checkout_key="e" * 32,
    )  # fmt: skip

    assert step.action == "failed"
    assert "nothing was charged" in step.message
    assert Donation.objects.get(pk=donation.pk).status == Donation.Status.ABANDONED


def test_the_gift_list_does_not_show_a_gift_that_never_started(editor):
    never = GiftFactory(
        donor=DonorFactory(email="left@example.test"),
        status=Gift.Status.INCOMPLETE,
        stripe_subscription_id=None,
    )
    GiftFactory(donor=DonorFactory(email="giving@example.test"))

    page = editor.get("/admin/donations/gift/").content.decode()

    assert "giving@example.test" in page
    assert "left@example.test" not in page
    asked = editor.get(f"/admin/donations/gift/?status__exact={never.status}")
    assert "left@example.test" in asked.content.decode()


def test_a_checkout_charged_while_it_expires_keeps_its_gift(monkeypatch):
    """The charge step reads the card between the expiry's list of old checkouts and its
    update: the donation is no longer unfinished, so neither it nor its gift is ended (a
    cancelled gift would then be charged every month with no way to stop it)."""
    from django.db.models.query import QuerySet

    gift = GiftFactory(status=Gift.Status.INCOMPLETE, stripe_subscription_id=None)
    donation = unfinished(age=timedelta(days=2), gift=gift, frequency="month")
    values_list = QuerySet.values_list

    def listed_then_charged(self, *fields, **kwargs):
        rows = values_list(self, *fields, **kwargs)
        if "gift_id" in fields:
            rows = list(rows)
            Donation.objects.filter(pk=donation.pk).update(card_brand="visa", card_last4="4242")
        return rows

    monkeypatch.setattr(QuerySet, "values_list", listed_then_charged)

    services.checkouts_abandoned_expire()

    monkeypatch.undo()
    assert Donation.objects.get(pk=donation.pk).status == Donation.Status.PENDING
    gift.refresh_from_db()
    assert gift.status == Gift.Status.INCOMPLETE


def test_a_payment_stripe_reports_for_an_abandoned_checkout_is_recorded():
    """A charge whose answer was lost (no PaymentIntent id stored) of a donor erased since
    (card digits cleared) looks unfinished and expires; Stripe's late word that it was
    paid must still record the money, with its receipt."""
    from outlet.donations.models import DonorEmail
    from outlet.donations.stripe_objects import PaymentIntentFacts

    donation = unfinished(age=timedelta(days=2), card_brand="visa", card_last4="4242")
    services.donor_erase(donor=donation.donor)
    services.checkouts_abandoned_expire()
    assert Donation.objects.get(pk=donation.pk).status == Donation.Status.ABANDONED

    services.payment_intent_apply(
        facts=PaymentIntentFacts(
            id="pi_late", status="succeeded", amount=donation.amount,
            currency=donation.currency, customer_id="", invoice_id="", charge_id="ch_late",
            metadata={"donation_id": str(donation.pk)},
        )
    )  # fmt: skip

    donation.refresh_from_db()
    assert donation.status == Donation.Status.PAID
    assert donation.stripe_charge_id == "ch_late"
    assert DonorEmail.objects.filter(donation=donation, kind=DonorEmail.Kind.RECEIPT).exists()


@pytest.mark.parametrize("hours", [0, -1])
def test_an_expiry_that_would_end_checkouts_being_paid_fails_the_system_check(settings, hours):
    """0 (read as "never"?) or less would mark every checkout abandoned on the next beat,
    those whose card the reader is confirming with the bank included."""
    from django.core.checks import run_checks

    assert not [e for e in run_checks() if e.id.startswith("donations.")]
    settings.DONATION_CHECKOUT_EXPIRY_HOURS = hours

    errors = [e for e in run_checks() if e.id.startswith("donations.")]

    assert [e.id for e in errors] == ["donations.E002"]
    assert "DONATION_CHECKOUT_EXPIRY_HOURS" in errors[0].msg
