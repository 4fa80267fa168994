"""The editors' reader page: donor and subscriber records joined, a sign-in link sent."""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse

from outlet.readers.models import Reader
from tests.factories import DonationFactory, GiftFactory, NewsletterFactory, SubscriberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor(client, django_user_model):
    user = django_user_model.objects.create_superuser("editor", "editor@example.test", "pw")
    client.force_login(user)
    return client


def test_the_reader_page_joins_donor_and_subscriber_records(editor):
    gift = GiftFactory(donor__email="ada@example.com", amount=1500)
    DonationFactory(donor=gift.donor, gift=gift, status="paid", paid_at="2026-11-01T10:00Z")
    SubscriberFactory(email="ada@example.com", newsletters=[NewsletterFactory(name="Daily")])
    added = editor.post(reverse("admin:readers_reader_add"), {"email": "Ada@Example.com"})
    assert added.status_code == 302
    reader = Reader.objects.get(email="ada@example.com")
    page = editor.get(reverse("admin:readers_reader_change", args=[reader.pk])).content.decode()
    assert reverse("admin:donations_donor_change", args=[gift.donor.pk]) in page
    assert "$15.00 monthly" in page
    assert "Daily: subscribed" in page
    assert "Send a sign-in link" in page


def test_an_address_without_records_is_not_a_reader(editor):
    response = editor.post(reverse("admin:readers_reader_add"), {"email": "nobody@example.com"})
    assert response.status_code == 200
    assert "No one who gave or confirmed a subscription" in response.content.decode()
    assert not Reader.objects.exists()


def test_staff_send_a_sign_in_link_to_the_readers_own_address(editor, run_tasks):
    SubscriberFactory(email="ada@example.com", newsletters=[NewsletterFactory()])
    reader = Reader.objects.create(email="ada@example.com")
    url = reverse("admin:readers_reader_change", args=[reader.pk])
    with run_tasks():
        editor.post(url, {"_send_sign_in_link": "1"})
    assert [message.to for message in mail.outbox] == [["ada@example.com"]]
    assert "/account/sign-in/" in mail.outbox[0].body
    with run_tasks():
        editor.post(
            reverse("admin:readers_reader_changelist"),
            {"action": "send_sign_in_link", "_selected_action": [reader.pk]},
        )
    assert len(mail.outbox) == 2


def test_staff_see_only_the_records_they_may_view(client, django_user_model):
    from django.contrib.auth.models import Permission

    GiftFactory(donor__email="ada@example.com", donor__name="Ada Lovelace", amount=1500)
    SubscriberFactory(email="ada@example.com", newsletters=[NewsletterFactory(name="Daily")])
    reader = Reader.objects.create(email="ada@example.com")
    user = django_user_model.objects.create_user("clerk", "clerk@example.test", "pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_reader"))
    client.force_login(user)
    url = reverse("admin:readers_reader_change", args=[reader.pk])
    page = client.get(url).content.decode()
    assert "Ada Lovelace" not in page and "$15.00" not in page
    assert "Daily" not in page
    assert "Send a sign-in link" not in page  # sending one is a change
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_donor", "view_gift", "view_donation"])
    )
    page = client.get(url).content.decode()
    assert "Ada Lovelace" in page and "$15.00 monthly" in page
    assert "Daily" not in page
    user.user_permissions.add(Permission.objects.get(codename="view_subscriber"))
    assert "Daily: subscribed" in client.get(url).content.decode()
