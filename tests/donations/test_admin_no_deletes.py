"""Money records are history: no one deletes a donation, gift, donor, Stripe event or donor
email from the admin (a deleted Stripe event would be applied again; a donor leaves through
erasure, which keeps the money and drops the person)."""

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import RequestFactory
from django.urls import reverse

from outlet.donations.models import Donation, Donor, DonorEmail, Gift, StripeEvent
from tests.factories import DonationFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model", [Donation, Gift, Donor, StripeEvent, DonorEmail])
def test_no_one_may_delete_money_records_alone_or_in_bulk(model):
    superuser = User.objects.create_superuser("boss", "boss@example.org", "pw-pw-pw-pw")
    request = RequestFactory().get("/admin/")
    request.user = superuser
    model_admin = admin.site._registry[model]

    assert not model_admin.has_delete_permission(request)
    assert "delete_selected" not in model_admin.get_actions(request)


def test_a_donation_cannot_be_deleted_even_by_a_superuser(admin_client):
    donation = DonationFactory()
    url = reverse("admin:donations_donation_delete", args=[donation.pk])

    page = admin_client.get(url)
    admin_client.post(url, {"post": "yes"})

    assert page.status_code == 403
    assert Donation.objects.filter(pk=donation.pk).exists()
