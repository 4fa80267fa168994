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


def test_an_expired_checkout_is_never_charged_later(monkeypatch):
    donation = unfinished(age=timedelta(days=2))
    services.checkouts_abandoned_expire()
    monkeypatch.setattr(
        stripe_gateway, "setup_intent_retrieve", lambda **kw: pytest.fail("Stripe called")
    )

    step = services.checkout_charge(
        donation=Donation.objects.get(pk=donation.pk), setup_intent_id="seti_1"
    )

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
