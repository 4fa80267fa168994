"""Changing the account's address: confirmed by the new mailbox, told to the old one, and
revoked by "sign out everywhere"; afterwards nothing mailed to the old address still works."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from outlet.donations.models import Donor
from outlet.newsletters.models import Subscriber
from outlet.readers.models import Reader
from outlet.readers.tokens import reader_token_make
from tests.factories import SubscriberFactory

from .conftest import email_change_link, signed_in

pytestmark = pytest.mark.django_db


def ask_for_change(browser: Client, email: str, run_tasks) -> str:
    with run_tasks():
        response = browser.post(reverse("readers:email-change"), {"email": email})
    assert response["Location"].endswith("?done=email-sent")
    to_new = [message for message in mail.outbox if message.to == [email]]
    return email_change_link(to_new[-1])


def test_change_of_address_is_confirmed_by_the_new_mailbox(monthly_reader, run_tasks):
    browser = signed_in("reader@example.com")
    path = ask_for_change(browser, "new@example.org", run_tasks)
    assert Donor.objects.get().email == "reader@example.com"  # nothing changes yet
    assert browser.get(path).status_code == 200  # a scanner's GET changes nothing
    response = browser.post(path)
    assert response.status_code == 302
    assert Donor.objects.get().email == "new@example.org"
    assert Subscriber.objects.get().email == "new@example.org"
    assert Reader.objects.get().email == "new@example.org"
    assert "outlet_reader" not in response.cookies or not response.cookies["outlet_reader"].value
    # Confirming starts no session and ends the others: the reader signs in as usual.
    page = browser.get(response["Location"]).content.decode()
    assert "Your address is changed" in page
    assert "Email me a sign-in link" in page
    assert "new@example.org" in signed_in("new@example.org").get("/account/").content.decode()
    assert browser.post(path).status_code == 410  # single use


def test_a_change_of_address_ends_sessions_and_links_of_the_old_address(monthly_reader, run_tasks):
    elsewhere = signed_in("reader@example.com")
    reader = Reader.objects.get()
    old_sign_in = reader_token_make(purpose="sign-in", reader=reader)
    path = ask_for_change(signed_in("reader@example.com"), "new@example.org", run_tasks)
    assert Client().post(path).status_code == 302
    assert "Email me a sign-in link" in elsewhere.get("/account/").content.decode()
    assert Client().post(reverse("readers:sign-in", args=[old_sign_in])).status_code == 410


def test_change_of_address_to_one_in_use_is_refused(monthly_reader, run_tasks):
    SubscriberFactory(email="taken@example.org")
    path = ask_for_change(signed_in("reader@example.com"), "taken@example.org", run_tasks)
    response = Client().post(path)
    assert response.status_code == 409
    assert Donor.objects.get().email == "reader@example.com"


def test_an_address_taken_while_confirming_is_refused_not_an_error(
    monthly_reader, run_tasks, monkeypatch
):
    """The check for records at the new address and the move are not one statement: a
    sign-up for that address in between meets the unique constraint, and the reader gets
    the same refusal (409), with nothing moved."""
    from outlet.readers import services

    path = ask_for_change(signed_in("reader@example.com"), "taken@example.org", run_tasks)
    SubscriberFactory(email="taken@example.org")  # arrives after the check
    monkeypatch.setattr(services, "reader_address_in_use", lambda **kw: False)
    response = Client().post(path)
    assert response.status_code == 409
    assert "already has an account" in response.content.decode()
    assert Donor.objects.get().email == "reader@example.com"
    assert Reader.objects.get().email == "reader@example.com"


def test_sign_out_everywhere_revokes_a_pending_change_of_address_link(monthly_reader, run_tasks):
    """Someone holding the reader's session (a shared computer) asks to move the account
    to their own address; the reader notices and signs out everywhere. The link is dead."""
    intruder = signed_in("reader@example.com")
    path = ask_for_change(intruder, "intruder@evil.example", run_tasks)
    signed_in("reader@example.com").post(reverse("readers:sign-out-everywhere"))
    response = Client().post(path)
    assert response.status_code == 410
    assert "no longer works" in response.content.decode()
    assert Donor.objects.get().email == "reader@example.com"
    assert Subscriber.objects.get().email == "reader@example.com"
    assert "outlet_reader" not in response.cookies


def test_the_old_address_is_told_when_a_change_is_asked_for_and_when_it_happens(
    monthly_reader, run_tasks
):
    browser = signed_in("reader@example.com")
    path = ask_for_change(browser, "new@example.org", run_tasks)
    asked = [message for message in mail.outbox if message.to == ["reader@example.com"]]
    assert len(asked) == 1
    assert "new@example.org" in asked[0].body
    assert "Sign out everywhere" in asked[0].body  # how to stop it
    assert "reply to this email" in asked[0].body.lower()  # how to reach staff
    assert "/account/email/confirm/" not in asked[0].body
    mail.outbox.clear()
    with run_tasks():
        assert Client().post(path).status_code == 302
    [done] = [message for message in mail.outbox if message.to == ["reader@example.com"]]
    assert "new@example.org" in done.body
    assert "reply to this email" in done.body.lower()


def test_old_address_links_stop_controlling_the_subscriber_after_a_move(monthly_reader, run_tasks):
    """A year-long preferences link (and the RFC 8058 links) in the OLD mailbox carry the
    subscriber's token; the move rotates it, so they no longer act on the new address."""
    from outlet.newsletters.tokens import preferences_token

    subscriber = Subscriber.objects.get()
    old_preferences = reverse("newsletters:preferences", args=[preferences_token(subscriber)])
    path = ask_for_change(signed_in("reader@example.com"), "new@example.org", run_tasks)
    assert Client().post(path).status_code == 302
    moved = Subscriber.objects.get()
    assert moved.email == "new@example.org"
    assert moved.token != subscriber.token
    response = Client().post(old_preferences, {"action": "unsubscribe_all"})
    assert response.status_code != 200 or Subscriber.objects.get().status == "active"
    assert Subscriber.objects.get().status == "active"


def test_a_repeated_notice_task_tells_the_old_address_once(monthly_reader):
    from outlet.readers.tasks import reader_email_change_notice_task

    for _ in range(2):
        reader_email_change_notice_task.apply(
            args=["reader@example.com", "new@example.org", True, "notice-1"]
        )
    assert [message.to for message in mail.outbox] == [["reader@example.com"]]


def test_a_change_of_address_link_is_not_mailed_once_the_owner_signed_out_everywhere(
    monthly_reader, django_capture_on_commit_callbacks, run_tasks
):
    """The link was signed when the task ran, with the epoch of that moment: a task
    delayed (or retried) past "Sign out everywhere" mailed a link that worked."""
    from outlet.readers.services import reader_sign_out_everywhere

    stolen = signed_in("reader@example.com")
    with django_capture_on_commit_callbacks(execute=False) as queued:
        stolen.post(reverse("readers:email-change"), {"email": "thief@example.org"})
    reader_sign_out_everywhere(reader=Reader.objects.get())
    mail.outbox.clear()
    for callback in queued:
        callback()  # the queue catches up (run_tasks runs each task in process)
    assert [m for m in mail.outbox if m.to == ["thief@example.org"]] == []
    assert Reader.objects.get().email == "reader@example.com"


def test_a_change_of_address_link_is_not_mailed_after_the_epoch_moved_nor_without_one(
    monthly_reader, django_capture_on_commit_callbacks, run_tasks
):
    from outlet.readers import tasks

    browser = signed_in("reader@example.com")
    with django_capture_on_commit_callbacks(execute=False) as queued:
        browser.post(reverse("readers:email-change"), {"email": "new@example.org"})
    Reader.objects.update(session_epoch=7)  # moved on before the task ran
    for callback in queued:
        callback()
    assert [m for m in mail.outbox if m.to == ["new@example.org"]] == []
    # A task queued before this change (no epoch) mails nothing either: it cannot tell.
    tasks.reader_email_change_send_task.apply(args=[Reader.objects.get().pk, "new@example.org"])
    assert [m for m in mail.outbox if m.to == ["new@example.org"]] == []


def test_a_confirmed_change_of_address_has_the_donors_stripe_customers_follow(
    monthly_reader, run_tasks, monkeypatch
):
    from outlet.donations.tasks import donor_stripe_customers_sync_task

    synced: list[int] = []
    monkeypatch.setattr(donor_stripe_customers_sync_task, "delay", synced.append)
    browser = signed_in("reader@example.com")
    path = ask_for_change(browser, "new@example.org", run_tasks)
    assert synced == []  # asking changes nothing

    with run_tasks():
        assert browser.post(path).status_code == 302

    assert synced == [monthly_reader.donor_id]
