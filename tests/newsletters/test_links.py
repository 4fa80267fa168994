"""Signed links: preferences, one-click unsubscribe (RFC 8058), tampered and expired links."""

import time

import pytest
from django.core import mail
from django.urls import reverse

from outlet.newsletters.models import Subscriber, Subscription
from outlet.newsletters.tokens import (
    confirm_token,
    list_unsubscribe_headers,
    preferences_token,
    preferences_url,
    unsubscribe_token,
    unsubscribe_url,
)
from tests.factories import SubscriberFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_tasks")]


@pytest.fixture
def reader(daily, weekly):
    return SubscriberFactory(email="reader@example.com", newsletters=[daily, weekly])


def path_of(url: str) -> str:
    return url.split("://", 1)[1].split("/", 1)[1].join(["/", ""])


def old_preferences_path(subscriber) -> str:
    """A preferences link as emails carried it before reader accounts: still honoured
    until NEWSLETTER_PREFERENCES_MAX_AGE has passed."""
    return reverse("newsletters:preferences", args=[preferences_token(subscriber)])


def test_new_emails_send_readers_to_their_account_not_a_preferences_token(reader):
    assert path_of(preferences_url(reader)) == reverse("readers:account")


def test_links_carry_no_address(reader, daily):
    for url in (preferences_url(reader), unsubscribe_url(reader, daily)):
        assert "reader" not in url
        assert "example.com" not in url


def test_list_unsubscribe_headers_offer_https_and_mailto_one_click(reader, daily, settings):
    headers = list_unsubscribe_headers(reader, daily)
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https_link, mailto_link = headers["List-Unsubscribe"].split(", ")
    assert https_link == f"<{unsubscribe_url(reader, daily)}>"
    assert https_link.startswith(f"<{settings.SITE_URL}/newsletter/unsubscribe/")
    assert mailto_link.startswith(f"<mailto:{settings.NEWSLETTER_UNSUBSCRIBE_MAILTO}?subject=")


def test_one_click_post_unsubscribes_without_cookies_or_csrf(reader, daily, weekly):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    response = client.post(
        path_of(unsubscribe_url(reader, daily)),
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert list(reader.subscriptions.values_list("newsletter__slug", flat=True)) == ["weekly"]
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.ACTIVE

    client.post(path_of(unsubscribe_url(reader, weekly)))
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.UNSUBSCRIBED
    assert not reader.is_mailable


def test_repeated_one_click_post_is_harmless(client, reader):
    url = path_of(unsubscribe_url(reader))
    assert client.post(url).status_code == 200
    assert client.post(url).status_code == 200
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.UNSUBSCRIBED
    assert not Subscription.objects.exists()


def test_unsubscribe_get_changes_nothing(client, reader, daily):
    response = client.get(path_of(unsubscribe_url(reader, daily)))
    assert response.status_code == 200
    assert b"Unsubscribe from The Daily Briefing?" in response.content
    assert b'<form method="post"' in response.content
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.ACTIVE
    assert reader.subscriptions.count() == 2


def test_preferences_drop_one_newsletter_and_pause(client, reader, daily, weekly):
    url = old_preferences_path(reader)
    page = client.get(url)
    assert page.status_code == 200
    assert page.content.count(b"checked") == 2

    response = client.post(url, {"newsletters": [weekly.pk], "pause": "30", "action": "save"})
    assert response.status_code == 200
    assert b"Your choices are saved" in response.content
    assert b"Paused" in response.content
    choices = list(reader.subscriptions.all())
    assert [c.newsletter for c in choices] == [weekly]
    assert choices[0].is_paused


def test_preferences_unsubscribe_from_all(client, reader):
    response = client.post(old_preferences_path(reader), {"action": "unsubscribe_all"})
    assert response.status_code == 200
    assert b"unsubscribed" in response.content
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.UNSUBSCRIBED


@pytest.mark.parametrize("name", ["confirm", "preferences", "unsubscribe"])
def test_tampered_links_show_a_page_offering_a_new_link(client, reader, name):
    token = {"confirm": confirm_token, "preferences": preferences_token,
             "unsubscribe": unsubscribe_token}[name](reader)  # fmt: skip
    tampered = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    for method in (client.get, client.post):
        response = method(reverse(f"newsletters:{name}", args=[tampered]))
        assert response.status_code == 400
        assert b"This link doesn" in response.content
        assert b"Send me a new link" in response.content
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.ACTIVE
    assert reader.subscriptions.count() == 2


def test_a_preferences_link_cannot_be_used_to_unsubscribe_or_confirm(client, reader):
    token = preferences_token(reader)
    assert client.post(reverse("newsletters:unsubscribe", args=[token])).status_code == 400
    assert client.post(reverse("newsletters:confirm", args=[token])).status_code == 400


def test_expired_confirmation_link_says_so(client, settings, daily):
    reader = SubscriberFactory(status=Subscriber.Status.PENDING)
    token = confirm_token(reader)
    settings.NEWSLETTER_CONFIRM_MAX_AGE = 1
    time.sleep(2.1)
    response = client.post(reverse("newsletters:confirm", args=[token]))
    assert response.status_code == 400
    assert b"This link has expired" in response.content
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.PENDING


def test_new_link_request_mails_known_addresses_only_and_answers_the_same(
    client, reader, django_capture_on_commit_callbacks
):
    url = reverse("newsletters:link-request")
    with django_capture_on_commit_callbacks(execute=True):
        known = client.post(url, {"email": "Reader@example.com"})
        unknown = client.post(url, {"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 200
    assert known.content == unknown.content
    assert [m.to for m in mail.outbox] == [["reader@example.com"]]
    assert preferences_url(reader).split("/preferences/")[0] in mail.outbox[0].body


def test_old_confirmation_link_after_unsubscribing_does_not_resubscribe(client, daily):
    from outlet.newsletters.services import subscriber_signup, subscriber_unsubscribe

    subscriber = subscriber_signup(email="undecided@example.com", newsletters=[daily])
    token = confirm_token(subscriber)
    client.post(reverse("newsletters:confirm", args=[token]))
    subscriber_unsubscribe(subscriber=subscriber)

    response = client.post(reverse("newsletters:confirm", args=[token]))
    assert response.status_code == 400
    assert b"Send me a new link" in response.content
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.UNSUBSCRIBED


def test_unsubscribe_pages_hand_out_no_preferences_link(client, reader, daily):
    """An unsubscribe link never expires and travels in forwarded mail: it must not lead to a
    page that can subscribe the address again without a fresh link sent to it."""
    path = path_of(unsubscribe_url(reader, daily))
    preferences_path = reverse("newsletters:preferences", args=["x"]).rsplit("x/", 1)[0]

    shown = client.get(path).content.decode()
    done = client.post(path).content.decode()

    for page in (shown, done):
        assert preferences_path not in page
        assert reverse("readers:account") in page  # which mails a sign-in link to the address
