"""stripe_adopt from the admin: the Gifts list links to it; a dry run reports and writes
nothing; a run adopts; only editors who may change gifts can run it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from outlet.donations import stripe_gateway
from outlet.donations.models import Donation, Gift
from tests.donations.stripe_contract import StubStripe

pytestmark = pytest.mark.django_db

URL = reverse("admin:donations_gift_adopt")


@pytest.fixture
def stub(settings, monkeypatch):
    settings.STRIPE_API_BASE = "https://api.stripe.com"
    settings.STRIPE_DIALECT = "current"
    settings.STRIPE_SECRET_KEY = "sk_test_contract"
    transport = StubStripe()
    monkeypatch.setattr(stripe_gateway, "TRANSPORT", transport)
    transport.existing_subscription(email="old@example.org", amount=1500, paid_invoices=2)
    transport.existing_subscription(email="euro@example.org", amount=1500, currency="eur")
    return transport


def test_the_gift_list_links_to_adoption(admin_client):
    response = admin_client.get(reverse("admin:donations_gift_changelist"))
    assert URL in response.content.decode()


def test_a_dry_run_reports_and_writes_nothing(admin_client, stub):
    response = admin_client.post(URL, {"dry_run": "on"})

    text = response.content.decode()
    assert response.status_code == 200
    assert "stripe_adopt: subscriptions=2 adopted=1 updated=0 skipped=1" in text
    assert "currency EUR is not the site" in text
    assert not Gift.objects.exists()
    assert stub.problems == [] and {r.method for r in stub.requests} == {"get"}


def test_a_run_adopts_and_a_second_doubles_nothing(admin_client, stub):
    admin_client.post(URL, {})
    response = admin_client.post(URL, {"products": "prod_oldsystem, prod_other"})

    assert "adopted=0 updated=0 skipped=1 failed=0 donations=0" in response.content.decode()
    assert Gift.objects.get().donor.email == "old@example.org"
    assert Donation.objects.count() == 2


def test_bad_metadata_is_refused_in_words(admin_client, stub):
    response = admin_client.post(URL, {"metadata": "campaign"})
    assert "KEY=VALUE" in response.content.decode()
    assert not stub.requests


def test_staff_who_may_not_change_gifts_cannot_adopt(client, stub):
    staff = User.objects.create_user("viewer", password="pw", is_staff=True)
    client.force_login(staff)
    assert client.post(URL, {}).status_code == 403
    assert not stub.requests
