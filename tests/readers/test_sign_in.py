"""Signing in to the reader account: enumeration, single use, expiry, sessions."""

from __future__ import annotations

import time

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from outlet.readers.models import Reader
from outlet.readers.services import reader_sign_out_everywhere
from outlet.readers.tokens import reader_token_make
from tests.factories import (
    DonationFactory,
    DonorFactory,
    GiftFactory,
    NewsletterFactory,
    SubscriberFactory,
)

from .conftest import link_in_mail, signed_in

pytestmark = pytest.mark.django_db


def test_the_answer_is_the_same_for_known_and_unknown_addresses(request_link):
    SubscriberFactory(email="known@example.com", newsletters=[NewsletterFactory()])
    known, known_queued = request_link("known@example.com")
    stranger, stranger_queued = request_link("stranger@example.com")
    assert known.status_code == stranger.status_code == 200
    assert known.content == stranger.content
    # The request did the same work (one task queued after commit) for both; only the task
    # looked the address up, and only the known one got mail, once for a repeated task.
    assert known_queued == stranger_queued == 1
    assert [message.to for message in mail.outbox] == [["known@example.com"]]
    assert not Reader.objects.filter(email="stranger@example.com").exists()


def test_a_donor_who_gave_without_a_subscription_gets_a_link(request_link):
    DonationFactory(donor=DonorFactory(email="giver@example.test"), status="paid")
    request_link("Giver@Example.test")
    assert mail.outbox[0].to == ["giver@example.test"]
    assert "/account/sign-in/" in mail.outbox[0].body


def test_links_are_rate_limited_per_address_and_per_ip(request_link, settings):
    settings.READER_LINKS_PER_HOUR = 2
    settings.READER_LINKS_PER_IP_PER_HOUR = 4
    DonationFactory(donor=DonorFactory(email="giver@example.test"), status="paid")
    answers = [request_link("giver@example.test")[0].content for _ in range(4)]
    assert len(mail.outbox) == 2  # per address from this IP
    assert len(set(answers)) == 1  # a request over the limit gets the same answer
    request_link("giver@example.test", ip="10.0.0.2")  # the reader elsewhere is not locked out
    assert len(mail.outbox) == 3
    mail.outbox.clear()
    for n in range(6):
        DonationFactory(donor=DonorFactory(email=f"other{n}@example.test"), status="paid")
        request_link(f"other{n}@example.test", ip="10.0.0.9")
    assert len(mail.outbox) == 4  # per IP


def test_the_link_signs_in_once_and_a_reused_link_says_so(client, request_link):
    SubscriberFactory(email="known@example.com", newsletters=[NewsletterFactory(name="Daily")])
    request_link("known@example.com")
    path = link_in_mail()
    assert client.get(path).status_code == 200  # a mail scanner's GET spends nothing
    response = client.post(path)
    assert response.status_code == 302
    page = client.get(reverse("readers:account"))
    assert "known@example.com" in page.content.decode()
    assert "Daily" in page.content.decode()
    other_device = Client()
    reused = other_device.post(path)
    assert reused.status_code == 410
    assert "already used" in reused.content.decode()
    assert "Email me a sign-in link" in reused.content.decode()


def test_the_link_works_on_another_device(client, request_link):
    DonationFactory(donor=DonorFactory(email="giver@example.test"), status="paid")
    request_link("giver@example.test")
    phone = Client()
    phone.post(link_in_mail())
    assert "giver@example.test" in phone.get(reverse("readers:account")).content.decode()


def test_an_expired_link_says_so(client, settings):
    reader = Reader.objects.create(email="known@example.com")
    token = reader_token_make(purpose="sign-in", reader=reader)
    settings.READER_SIGN_IN_MAX_AGE = 60
    from unittest import mock

    with mock.patch("django.core.signing.time.time", return_value=time.time() + 61):
        response = client.post(reverse("readers:sign-in", args=[token]))
    assert response.status_code == 410
    assert "expired" in response.content.decode()
    assert "outlet_reader" not in response.cookies


def test_a_forged_or_cross_purpose_token_signs_nobody_in(client):
    reader = Reader.objects.create(email="known@example.com")
    change = reader_token_make(purpose="email-change", reader=reader, email="x@example.com")
    for token in (change, "nonsense", change[:-2] + "xx"):
        response = client.post(reverse("readers:sign-in", args=[token]))
        assert response.status_code == 410
        assert "outlet_reader" not in response.cookies


def test_the_session_cookie_is_scoped_to_the_account_and_safe(client, settings):
    reader = Reader.objects.create(email="known@example.com")
    token = reader_token_make(purpose="sign-in", reader=reader)
    settings.SESSION_COOKIE_SECURE = True
    cookie = client.post(reverse("readers:sign-in", args=[token])).cookies["outlet_reader"]
    assert cookie["path"] == "/account/"
    assert cookie["httponly"] and cookie["secure"]
    assert cookie["samesite"] == "Lax"
    assert int(cookie["max-age"]) == settings.READER_SESSION_AGE
    assert "sessionid" not in client.cookies  # no Django session: reader pages stay public


def test_account_pages_are_private_and_never_stored(client):
    reader = Reader.objects.create(email="known@example.com")
    client.post(
        reverse("readers:sign-in", args=[reader_token_make(purpose="sign-in", reader=reader)])
    )
    for response in (
        client.get(reverse("readers:account")),
        Client().get(reverse("readers:account")),
    ):
        assert "no-store" in response["Cache-Control"]
        assert "private" in response["Cache-Control"]


def test_sign_out_everywhere_ends_every_session(client):
    DonationFactory(donor=DonorFactory(email="giver@example.test"), status="paid")
    reader = Reader.objects.create(email="giver@example.test")
    laptop, phone = Client(), Client()
    for browser in (laptop, phone):
        browser.post(
            reverse("readers:sign-in", args=[reader_token_make(purpose="sign-in", reader=reader)])
        )
        assert "Your account" in browser.get(reverse("readers:account")).content.decode()
    response = laptop.post(reverse("readers:sign-out-everywhere"))
    assert "signed out everywhere" in response.content.decode()
    for browser in (laptop, phone):
        page = browser.get(reverse("readers:account")).content.decode()
        assert "Email me a sign-in link" in page
        assert "giver@example.test" not in page
    assert phone.post(reverse("readers:data-delete"), {"confirm": "on"}).status_code == 403


def test_sign_out_everywhere_service_bumps_the_epoch():
    reader = Reader.objects.create(email="known@example.com")
    reader_sign_out_everywhere(reader=reader)
    reader.refresh_from_db()
    assert reader.session_epoch == 1


def test_a_signed_in_reader_still_gets_the_public_cacheable_pages(client):
    """The cookie is scoped to /account/ (a browser sends it nowhere else); even sent, it
    is not a session cookie, so the front page stays public and shared."""
    reader = Reader.objects.create(email="known@example.com")
    token = reader_token_make(purpose="sign-in", reader=reader)
    client.post(reverse("readers:sign-in", args=[token]))
    assert "outlet_reader" in client.cookies
    response = client.get("/")
    assert response.status_code == 200
    assert "public" in response["Cache-Control"]
    assert "private" not in response["Cache-Control"]


def test_used_links_are_forgotten_only_once_they_have_expired_anyway(client, settings):
    from datetime import timedelta

    from django.utils import timezone

    from outlet.readers.models import ReaderLinkUse
    from outlet.readers.tasks import reader_link_uses_prune_task

    reader = Reader.objects.create(email="known@example.com")
    token = reader_token_make(purpose="sign-in", reader=reader)
    client.post(reverse("readers:sign-in", args=[token]))
    old = ReaderLinkUse.objects.create(nonce="old", purpose="sign-in")
    ReaderLinkUse.objects.filter(pk=old.pk).update(
        used_at=timezone.now() - timedelta(seconds=settings.READER_EMAIL_CHANGE_MAX_AGE + 120)
    )
    reader_link_uses_prune_task.apply()
    assert list(ReaderLinkUse.objects.values_list("purpose", flat=True)) == ["sign-in"]
    assert Client().post(reverse("readers:sign-in", args=[token])).status_code == 410


def test_sign_out_everywhere_revokes_sign_in_links_not_yet_used():
    reader = Reader.objects.create(email="known@example.com")
    mailed_before = reader_token_make(purpose="sign-in", reader=reader)
    DonationFactory(donor=DonorFactory(email="known@example.com"), status="paid")
    signed_in("known@example.com").post(reverse("readers:sign-out-everywhere"))
    response = Client().post(reverse("readers:sign-in", args=[mailed_before]))
    assert response.status_code == 410
    assert "no longer works" in response.content.decode()
    assert "outlet_reader" not in response.cookies


def test_requests_from_other_ips_cannot_lock_a_reader_out(request_link, settings):
    """Four IPs asking three times each spend READER_LINKS_PER_ADDRESS_PER_HOUR (10);
    the reader's own first request from home still gets its link."""
    settings.READER_LINKS_PER_HOUR = 3
    settings.READER_LINKS_PER_ADDRESS_PER_HOUR = 10
    DonationFactory(donor=DonorFactory(email="giver@example.test"), status="paid")
    for n in range(4):
        for _ in range(3):
            request_link("giver@example.test", ip=f"203.0.113.{n}")
    assert len(mail.outbox) == 10  # the cap from everywhere held the flood
    mail.outbox.clear()
    request_link("giver@example.test", ip="198.51.100.7")  # the reader, at home
    assert len(mail.outbox) == 1
    request_link("giver@example.test", ip="198.51.100.7")  # but only the first one
    assert len(mail.outbox) == 1


def test_an_account_404_is_not_storable(monthly_reader):
    browser = signed_in("reader@example.com")
    for response in (
        browser.get(reverse("readers:receipt", args=[999999])),
        Client().get("/account/no-such-page/"),
        browser.get(reverse("readers:sign-out")),  # 405
    ):
        assert response.status_code in (404, 405)
        assert "no-store" in response.get("Cache-Control", "")
        assert "private" in response.get("Cache-Control", "")


def test_a_flood_from_ever_new_ips_stops_at_the_hard_ceiling(request_link, settings):
    """The first request from each new IP passed the cap from everywhere: forty IPs
    meant forty links. The reader's first request from a new IP still passes the cap,
    but nothing passes the ceiling."""
    settings.READER_LINKS_PER_ADDRESS_PER_HOUR = 10
    settings.READER_LINKS_PER_ADDRESS_CEILING = 15
    DonationFactory(donor=DonorFactory(email="giver@example.test"), status="paid")
    for n in range(40):
        request_link("giver@example.test", ip=f"203.0.113.{n}")
    assert len(mail.outbox) == 15


def test_ipv6_addresses_of_one_64_count_as_one_client(request_link, settings):
    """One host holds a whole /64: each of its addresses is not a new client."""
    settings.READER_LINKS_PER_HOUR = 2
    settings.READER_LINKS_PER_IP_PER_HOUR = 3
    DonationFactory(donor=DonorFactory(email="giver@example.test"), status="paid")
    for n in range(1, 6):
        request_link("giver@example.test", ip=f"2001:db8:1:2::{n:x}")
    assert len(mail.outbox) == 2  # per address from this /64
    for n in range(3):
        DonationFactory(donor=DonorFactory(email=f"other{n}@example.test"), status="paid")
        request_link(f"other{n}@example.test", ip=f"2001:db8:1:2:ffff::{n + 1}")
    assert len(mail.outbox) == 2  # the /64's hourly requests were spent
    request_link("giver@example.test", ip="2001:db8:1:3::1")  # another /64
    assert len(mail.outbox) == 3


def test_ipv4_clients_seen_as_mapped_ipv6_are_each_their_own_client(request_link, settings):
    """A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d, all inside ::/64:
    counted by their /64 they would be one client, and one busy reader would spend
    every IPv4 reader's hourly allowance."""
    settings.READER_LINKS_PER_IP_PER_HOUR = 2
    for n in range(4):
        DonationFactory(donor=DonorFactory(email=f"giver{n}@example.test"), status="paid")
        request_link(f"giver{n}@example.test", ip=f"::ffff:198.51.100.{n + 1}")
    assert len(mail.outbox) == 4
    request_link("giver0@example.test", ip="198.51.100.1")  # the same client, by IPv4
    request_link("giver0@example.test", ip="::ffff:198.51.100.1")
    assert len(mail.outbox) == 5  # its allowance of two is spent


@pytest.mark.parametrize(
    "records",
    ["abandoned checkout", "unconfirmed sign-up", "ended gift, never paid"],
)
def test_an_address_with_nothing_given_or_confirmed_gets_no_sign_in_mail(request_link, records):
    """Anyone can type any address into the donate or sign-up form: that alone must not
    make the address receive sign-in mail."""
    if records == "abandoned checkout":
        DonationFactory(donor=DonorFactory(email="victim@example.test"), status="pending")
    elif records == "unconfirmed sign-up":
        SubscriberFactory(email="victim@example.test", status="pending", confirmed_at=None)
    else:
        GiftFactory(donor=DonorFactory(email="victim@example.test"), status="cancelled")
    request_link("victim@example.test")
    assert mail.outbox == []
    assert not Reader.objects.exists()


@pytest.mark.parametrize("records", ["paid gift", "confirmed subscription", "unsubscribed since"])
def test_an_address_that_gave_or_confirmed_gets_its_link(request_link, records):
    if records == "paid gift":
        DonationFactory(donor=DonorFactory(email="known@example.test"), status="paid")
    elif records == "confirmed subscription":
        SubscriberFactory(email="known@example.test", newsletters=[NewsletterFactory()])
    else:
        SubscriberFactory(email="known@example.test", status="unsubscribed")
    request_link("known@example.test")
    assert [message.to for message in mail.outbox] == [["known@example.test"]]
