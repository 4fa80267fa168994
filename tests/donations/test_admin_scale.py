"""The donations list at scale: search through indexes, figures cached on large tables."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from tests.factories import DonationFactory, DonorFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor_client(client):
    user = User.objects.create_superuser("editor", "editor@outlet.test", "pw-for-tests-only")
    client.force_login(user)
    return client


def _listed(client, **query) -> list[int]:
    response = client.get(reverse("admin:donations_donation_changelist"), query)
    assert response.status_code == 200
    return sorted(d.pk for d in response.context["cl"].result_list)


def test_search_finds_a_stripe_id_exactly_and_donors_by_part_of_address_or_name(editor_client):
    ada = DonorFactory(email="Ada.Lovelace@Example.org", name="Ada Lovelace")
    bob = DonorFactory(email="bob@example.org", name="Bob Byron")
    first = DonationFactory(donor=ada, stripe_payment_intent_id="pi_abc123abc123abc123")
    second = DonationFactory(donor=bob, stripe_payment_intent_id="pi_abc123abc123abc1234")

    assert _listed(editor_client, q="pi_abc123abc123abc123") == [first.pk]
    assert _listed(editor_client, q="lovelace@") == [first.pk]
    assert _listed(editor_client, q="byron") == [second.pk]
    assert _listed(editor_client, q="example.org") == [first.pk, second.pk]


def test_large_tables_show_cached_totals_with_this_month_live(editor_client, monkeypatch):
    from outlet.core import paginators
    from outlet.donations.tasks import donation_overview_refresh_task

    monkeypatch.setattr(paginators, "table_row_estimate", lambda model: 5_000_000)
    old = timezone.now() - timedelta(days=70)
    DonationFactory(status="paid", amount=1000, paid_at=old)
    url = reverse("admin:donations_donation_changelist")
    assert editor_client.get(url).context["totals"].all_time == 1000

    DonationFactory(status="paid", amount=500, paid_at=timezone.now())
    totals = editor_client.get(url).context["totals"]
    assert (totals.all_time, totals.this_month) == (1000, 500)  # cached; this month live

    donation_overview_refresh_task.apply()
    assert editor_client.get(url).context["totals"].all_time == 1500
