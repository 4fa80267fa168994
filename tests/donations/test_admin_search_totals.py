"""The donations list keeps Django's search (parts of Stripe ids, several words, quoted
phrases) and its cached totals follow refunds and disputes and say how old they are."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from outlet.donations.stripe_objects import ChargeFacts
from tests.factories import DonationFactory, DonorFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor_client(client):
    user = User.objects.create_superuser("editor", "editor@outlet.test", "pw-for-tests-only")
    client.force_login(user)
    return client


@pytest.fixture
def large_table(monkeypatch):
    from outlet.core import paginators

    monkeypatch.setattr(paginators, "table_row_estimate", lambda model: 5_000_000)


def _listed(client, **query) -> list[int]:
    response = client.get(reverse("admin:donations_donation_changelist"), query)
    assert response.status_code == 200
    return sorted(d.pk for d in response.context["cl"].result_list)


def test_search_finds_part_of_a_stripe_id(editor_client):
    donation = DonationFactory(stripe_payment_intent_id="pi_3MtwBwLkdIwHu7ix28a3tqPa")
    DonationFactory(stripe_payment_intent_id="pi_somethingelse")
    assert _listed(editor_client, q="3MtwBwLkdIwHu7ix") == [donation.pk]  # middle of the id
    assert _listed(editor_client, q="pi_3MtwBwLkd") == [donation.pk]  # first characters
    assert _listed(editor_client, q="PI_3MTWBWLKDIWHU7IX28A3TQPA") == [donation.pk]


def test_search_matches_words_across_name_and_address_and_quoted_phrases(editor_client):
    ada = DonorFactory(email="ada@example.org", name="Ada Lovelace")
    donation = DonationFactory(donor=ada)
    DonationFactory(donor=DonorFactory(email="ada@elsewhere.net", name="Ada Byron"))
    assert _listed(editor_client, q="Lovelace Ada") == [donation.pk]
    assert _listed(editor_client, q="ada example.org") == [donation.pk]
    assert _listed(editor_client, q='"Ada Lovelace"') == [donation.pk]


def test_cached_all_time_total_reflects_a_refund(
    editor_client, large_table, django_capture_on_commit_callbacks
):
    from outlet.donations.services.refunds import charge_refund_apply

    old = timezone.now() - timedelta(days=70)
    donation = DonationFactory(
        status="paid", amount=10_000, paid_at=old, stripe_payment_intent_id="pi_refund1"
    )
    url = reverse("admin:donations_donation_changelist")
    assert editor_client.get(url).context["totals"].all_time == 10_000

    facts = ChargeFacts(
        id="ch_1",
        payment_intent_id="pi_refund1",
        invoice_id="",
        amount=10_000,
        amount_refunded=10_000,
        refunded=True,
        currency=donation.currency,
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert charge_refund_apply(facts=facts) == "refunded"

    assert editor_client.get(url).context["totals"].all_time == 0


def test_cached_totals_say_how_old_they_are(editor_client, large_table):
    DonationFactory(status="paid", amount=1000, paid_at=timezone.now() - timedelta(days=70))
    url = reverse("admin:donations_donation_changelist")
    editor_client.get(url)
    content = editor_client.get(url).content.decode()
    assert "as of " in content
