from __future__ import annotations

import re
from unittest import mock

import pytest
from django.core import mail
from django.urls import reverse


@pytest.fixture
def request_link(client, django_capture_on_commit_callbacks):
    """POST the sign-in form; run what it queued (the task, twice, as a redelivered task
    would). Returns the response and how many tasks were queued."""
    from outlet.readers.tasks import reader_sign_in_send_task

    def run_twice(*args):
        for _ in range(2):
            reader_sign_in_send_task.apply(args=args)

    def request(email: str, ip: str = "127.0.0.1", browser=None):
        with django_capture_on_commit_callbacks(execute=False) as queued:
            response = (browser or client).post(
                reverse("readers:account"), {"email": email}, REMOTE_ADDR=ip
            )
        with mock.patch.object(reader_sign_in_send_task, "delay", run_twice):
            for callback in queued:
                callback()
        return response, len(queued)

    return request


def link_in_mail(message=None) -> str:
    message = message or mail.outbox[-1]
    return re.search(r"https?://\S+(/account/sign-in/\S+/)", message.body).group(1)


def sign_in(client, token_path: str):
    return client.post(token_path)


@pytest.fixture
def run_tasks(monkeypatch, django_capture_on_commit_callbacks):
    """Readers' tasks run in process when their transaction commits."""
    from outlet.readers import tasks

    for task in (
        tasks.reader_sign_in_send_task,
        tasks.reader_email_change_send_task,
        tasks.reader_email_change_notice_task,
    ):
        monkeypatch.setattr(task, "delay", lambda *args, task=task: task.apply(args=args))
    return lambda: django_capture_on_commit_callbacks(execute=True)


def signed_in(email: str):
    """A browser signed in as `email` (its reader row made if need be)."""
    from django.test import Client

    from outlet.readers.models import Reader
    from outlet.readers.tokens import reader_token_make

    reader, _ = Reader.objects.get_or_create(email=email)
    browser = Client()
    token = reader_token_make(purpose="sign-in", reader=reader)
    assert browser.post(reverse("readers:sign-in", args=[token])).status_code == 302
    return browser


def email_change_link(message=None) -> str:
    message = message or mail.outbox[-1]
    return re.search(r"https?://\S+(/account/email/confirm/\S+/)", message.body).group(1)


@pytest.fixture
def stripe_agrees(monkeypatch):
    """Stripe accepts every call; the calls are returned in order. A plan is named by its
    amount, so a test can tell which amount Stripe charges last."""
    from outlet.donations import stripe_gateway
    from outlet.donations.services import self_service

    calls = []
    monkeypatch.setattr(
        stripe_gateway,
        "subscription_amount_change",
        lambda **kw: calls.append(("amount", kw)),
    )
    monkeypatch.setattr(
        stripe_gateway, "subscription_cancel", lambda **kw: calls.append(("cancel", kw))
    )
    monkeypatch.setattr(self_service, "card_ready", lambda **kw: ("pm_1", "visa", "4444"))
    return calls


@pytest.fixture
def monthly_reader():
    """Gave monthly, subscribed to one newsletter; another newsletter exists."""
    from tests.factories import (
        DonationFactory,
        DonorFactory,
        GiftFactory,
        NewsletterFactory,
        SubscriberFactory,
    )

    daily = NewsletterFactory(name="Daily", slug="daily")
    NewsletterFactory(name="Weekend", slug="weekend")
    gift = GiftFactory(donor=DonorFactory(email="reader@example.com", name="Ada Reader"))
    DonationFactory(
        donor=gift.donor, gift=gift, frequency="month", amount=1000, status="paid",
        paid_at="2026-11-01T10:00:00Z", public_credit=True, public_name="Ada R.",
    )  # fmt: skip
    SubscriberFactory(email="reader@example.com", newsletters=[daily])
    return gift
