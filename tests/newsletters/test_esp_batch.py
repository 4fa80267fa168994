"""Sending through an ESP's batch API (anymail merge data): one API call per chunk,
each recipient's own links, greeting and headers as merge data, outcomes per recipient.

anymail's test backend (`anymail.backends.test.EmailBackend`) records each API call
(one outbox entry per call, with the normalised params) and reports one status for
every recipient of a call. It cannot give recipients of one call different statuses
or fail a call on demand, so `ScriptedEspBackend` below adds only that: a status per
address, and an error raised instead of the call.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from anymail.backends.test import EmailBackend as AnymailTestBackend
from anymail.exceptions import AnymailAPIError
from anymail.message import AnymailRecipientStatus
from django.core import mail
from django.utils import timezone
from django.utils.html import escape

from outlet.core.addresses import email_digest
from outlet.newsletters.issues import issue_plan, issue_send_now, issue_sending_check
from outlet.newsletters.models import Delivery, HeldBounce, Issue, Subscriber, Suppression
from outlet.newsletters.sending import batch_send, esp_batch_mode, greeting_for
from outlet.newsletters.tasks import issue_batch_send_task
from outlet.newsletters.tokens import list_unsubscribe_headers, preferences_url
from tests.factories import IssueFactory, SubscriberFactory

pytestmark = pytest.mark.django_db

MERGE_FORMAT = "{{{{{}}}}}"  # "{{key}}"


class ScriptedEspBackend(AnymailTestBackend):
    """anymail's test backend, plus per-address statuses and a failing call."""

    statuses: dict[str, str] = {}
    error: Exception | None = None
    after_call = None

    def post_to_esp(self, payload, message):
        if ScriptedEspBackend.error is not None:
            raise ScriptedEspBackend.error
        response = super().post_to_esp(payload, message)
        for address, status in ScriptedEspBackend.statuses.items():
            if address in response["recipient_status"]:
                response["recipient_status"][address] = AnymailRecipientStatus(
                    message_id=None, status=status
                )
        if ScriptedEspBackend.after_call is not None:
            ScriptedEspBackend.after_call()
        return response


@pytest.fixture(autouse=True)
def _esp(settings):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    settings.NEWSLETTER_ESP_MERGE_FIELD_FORMAT = MERGE_FORMAT
    settings.NEWSLETTER_ESP_BATCH_SIZE = 4
    settings.NEWSLETTER_RETRY_SECONDS = 60
    mail.outbox = []
    ScriptedEspBackend.statuses = {}
    ScriptedEspBackend.error = None
    ScriptedEspBackend.after_call = None
    yield
    ScriptedEspBackend.statuses = {}
    ScriptedEspBackend.error = None
    ScriptedEspBackend.after_call = None


def start(issue: Issue) -> Issue:
    issue_send_now(issue=issue)
    issue.refresh_from_db()
    issue_plan(issue=issue)
    return issue


def send_everything(issue: Issue, *, size: int = 7) -> Issue:
    start(issue)
    while batch_send(issue_id=issue.pk, size=size).claimed:
        pass
    issue_sending_check(issue_id=issue.pk)
    issue.refresh_from_db()
    return issue


def copies():
    """Each recipient's copy as the ESP would build it: (address, text, html, headers)."""
    for call in mail.outbox:
        params = call.anymail_test_params
        assert params["is_batch_send"]
        for address in (to.addr_spec for to in params["to"]):
            data = params["merge_data"][address]

            def fill(content, data=data):
                return re.sub(r"\{\{(\w+)\}\}", lambda m: data[m.group(1)], content)

            html = params["html_body"]
            headers = {**params["extra_headers"], **params["merge_headers"][address]}
            yield address, fill(params["text_body"]), fill(html), headers, call


def test_each_active_subscriber_gets_one_copy_with_their_own_links_one_call_per_chunk(
    daily, weekly
):
    readers = SubscriberFactory.create_batch(10, newsletters=[daily])
    readers[0].name = "Ana Lima"
    readers[0].save()
    SubscriberFactory(newsletters=[weekly])
    SubscriberFactory(newsletters=[daily], status=Subscriber.Status.UNSUBSCRIBED)
    issue = IssueFactory(newsletter=daily, subject="Maps and money")

    issue = send_everything(issue, size=7)

    # Claims of 7 then 3, in chunks of at most 4: 4 + 3, then 3 -> three API calls.
    assert [len(call.to) for call in mail.outbox] == [4, 3, 3]
    got = list(copies())
    assert sorted(address for address, *_ in got) == sorted(r.email for r in readers)
    by_address = {r.email: r for r in readers}
    unsubscribe_links = set()
    for address, text, html, headers, call in got:
        reader = by_address[address]
        list_headers = list_unsubscribe_headers(reader, daily)
        unsubscribe = list_headers["List-Unsubscribe"].split(">", 1)[0].lstrip("<")
        unsubscribe_links.add(unsubscribe)
        assert headers["List-Unsubscribe"] == list_headers["List-Unsubscribe"]
        assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert headers["List-Id"] == "The Daily Briefing <daily.127.0.0.1>"
        assert headers["Precedence"] == "bulk"
        delivery = Delivery.objects.get(issue=issue, subscriber=reader)
        assert headers["Message-ID"] == f"<issue-{issue.pk}.delivery-{delivery.pk}@127.0.0.1>"
        meta = call.anymail_test_params["merge_metadata"][address]
        assert meta == {"delivery_id": str(delivery.pk)}
        assert unsubscribe in text
        assert unsubscribe.replace("&", "&amp;") in html
        # The footer sends readers to their account (one address for all, no token).
        assert "/newsletter/preferences/" not in html
        assert preferences_url() in html and preferences_url() in text
        assert "@@" not in text and "@@" not in html
        assert greeting_for(reader.name) in text
        assert str(escape(greeting_for(reader.name))) in html
        if reader.name == "Ana Lima":
            assert "Hi Ana," in text
        assert call.anymail_test_params["subject"] == "Maps and money"
    assert len(unsubscribe_links) == 10
    assert issue.status == Issue.Status.SENT
    assert Delivery.objects.filter(issue=issue, status=Delivery.Status.SENT).count() == 10


def test_one_api_call_for_a_whole_chunk(daily, settings):
    settings.NEWSLETTER_ESP_BATCH_SIZE = 100
    SubscriberFactory.create_batch(25, newsletters=[daily])
    issue = start(IssueFactory(newsletter=daily))

    result = batch_send(issue_id=issue.pk, size=500)

    assert result.sent == 25
    (call,) = mail.outbox
    assert len(call.anymail_test_params["to"]) == 25
    assert len(call.anymail_test_params["merge_data"]) == 25


def test_rejected_address_fails_and_is_suppressed_a_failed_one_is_retried(daily, settings):
    settings.EMAIL_BACKEND = "tests.newsletters.test_esp_batch.ScriptedEspBackend"
    ok, rejected, failed = (
        SubscriberFactory(newsletters=[daily], email=f"{name}@example.com")
        for name in ("ok", "rejected", "failed")
    )
    ScriptedEspBackend.statuses = {rejected.email: "rejected", failed.email: "failed"}
    issue = start(IssueFactory(newsletter=daily))

    result = batch_send(issue_id=issue.pk)

    assert (result.sent, result.failed, result.retry) == (1, 1, 1)
    assert len(mail.outbox) == 1
    rows = {d.subscriber_id: d for d in Delivery.objects.filter(issue=issue)}
    assert rows[ok.pk].status == Delivery.Status.SENT
    assert rows[rejected.pk].status == Delivery.Status.FAILED
    # Held until the bounce-rate breaker has judged the issue's window (its end, here).
    assert HeldBounce.objects.filter(delivery=rows[rejected.pk]).exists()
    assert rows[failed.pk].status == Delivery.Status.PENDING
    assert rows[failed.pk].next_attempt_at > timezone.now()
    assert not Suppression.objects.filter(email_hash=email_digest(failed.email)).exists()

    # Later the ESP takes it: only that address is sent again.
    ScriptedEspBackend.statuses = {}
    Delivery.objects.filter(pk=rows[failed.pk].pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    assert batch_send(issue_id=issue.pk).sent == 1
    assert [to.addr_spec for to in mail.outbox[1].anymail_test_params["to"]] == [failed.email]
    assert Delivery.objects.get(pk=rows[failed.pk].pk).status == Delivery.Status.SENT
    assert issue_sending_check(issue_id=issue.pk)
    assert Suppression.objects.filter(email_hash=email_digest(rejected.email)).exists()
    assert not Suppression.objects.filter(email_hash=email_digest(failed.email)).exists()


def test_a_call_whose_every_address_is_refused_is_recorded_not_retried(daily, settings):
    # anymail raises AnymailRecipientsRefused when no recipient of a call was accepted.
    settings.EMAIL_BACKEND = "tests.newsletters.test_esp_batch.ScriptedEspBackend"
    readers = SubscriberFactory.create_batch(2, newsletters=[daily])
    ScriptedEspBackend.statuses = {r.email: "invalid" for r in readers}
    issue = start(IssueFactory(newsletter=daily))

    result = batch_send(issue_id=issue.pk)

    assert (result.sent, result.failed, result.retry) == (0, 2, 0)
    assert Issue.objects.get(pk=issue.pk).status == Issue.Status.SENDING
    assert issue_sending_check(issue_id=issue.pk)  # two bounces are not a broken ESP
    assert Suppression.objects.filter(email_hash__in=[r.email_hash for r in readers]).count() == 2


def test_an_api_error_pauses_the_issue_and_loses_no_one(daily, settings):
    settings.EMAIL_BACKEND = "tests.newsletters.test_esp_batch.ScriptedEspBackend"
    settings.NEWSLETTER_ESP_BATCH_SIZE = 3
    readers = SubscriberFactory.create_batch(6, newsletters=[daily])
    ScriptedEspBackend.error = AnymailAPIError("503 Service Unavailable")
    issue = start(IssueFactory(newsletter=daily))

    issue_batch_send_task(issue.pk)

    issue.refresh_from_db()
    assert issue.status == Issue.Status.PAUSED
    assert "503 Service Unavailable" in issue.pause_reason
    assert issue.auto_resume_at is not None
    assert mail.outbox == []
    rows = list(Delivery.objects.filter(issue=issue).order_by("id"))
    assert {row.status for row in rows} == {Delivery.Status.PENDING}
    # A failed call is no attempt on its recipients: every row went back untouched.
    assert [row.attempts for row in rows] == [0, 0, 0, 0, 0, 0]

    ScriptedEspBackend.error = None
    Issue.objects.filter(pk=issue.pk).update(status=Issue.Status.SENDING)
    Delivery.objects.filter(issue=issue).update(next_attempt_at=None)
    while batch_send(issue_id=issue.pk).claimed:
        pass
    addresses = sorted(address for address, *_ in copies())
    assert addresses == sorted(r.email for r in readers)


def test_pause_is_noticed_between_calls(daily, settings):
    settings.EMAIL_BACKEND = "tests.newsletters.test_esp_batch.ScriptedEspBackend"
    settings.NEWSLETTER_ESP_BATCH_SIZE = 2
    SubscriberFactory.create_batch(6, newsletters=[daily])
    issue = start(IssueFactory(newsletter=daily))
    ScriptedEspBackend.after_call = lambda: Issue.objects.filter(pk=issue.pk).update(
        status=Issue.Status.PAUSED
    )

    result = batch_send(issue_id=issue.pk)

    assert result.stopped == "paused or cancelled"
    assert len(mail.outbox) == 1
    counts = {
        status: Delivery.objects.filter(issue=issue, status=status, attempts=attempts).count()
        for status, attempts in ((Delivery.Status.SENT, 1), (Delivery.Status.PENDING, 0))
    }
    assert counts == {Delivery.Status.SENT: 2, Delivery.Status.PENDING: 4}


def test_batch_mode_is_chosen_from_the_backend(settings):
    settings.NEWSLETTER_ESP_MERGE_FIELD_FORMAT = ""
    settings.EMAIL_BACKEND = "anymail.backends.mailgun.EmailBackend"
    assert esp_batch_mode().merge_field_format == "%recipient.{}%"
    settings.EMAIL_BACKEND = "anymail.backends.sparkpost.EmailBackend"
    assert esp_batch_mode().merge_field_format.format("k") == "{{{k}}}"
    settings.EMAIL_BACKEND = "anymail.backends.sendgrid.EmailBackend"
    mode = esp_batch_mode()
    assert mode.esp_extra == {"merge_field_format": mode.merge_field_format}
    # Merge data needs a stored template at Postmark: one call per message there.
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    assert esp_batch_mode() is None
    settings.EMAIL_BACKEND = "anymail.backends.mailgun.EmailBackend"
    settings.NEWSLETTER_ESP_MERGE_FIELD_FORMAT = "off"
    assert esp_batch_mode() is None
    # SMTP and locmem never batch, whatever the format setting says.
    settings.NEWSLETTER_ESP_MERGE_FIELD_FORMAT = MERGE_FORMAT
    for backend in (
        "django.core.mail.backends.smtp.EmailBackend",
        "django.core.mail.backends.locmem.EmailBackend",
    ):
        settings.EMAIL_BACKEND = backend
        assert esp_batch_mode() is None


def test_without_batch_mode_an_anymail_backend_gets_one_call_per_message(daily, settings):
    settings.NEWSLETTER_ESP_MERGE_FIELD_FORMAT = "off"
    SubscriberFactory.create_batch(3, newsletters=[daily])
    issue = start(IssueFactory(newsletter=daily))

    assert batch_send(issue_id=issue.pk).sent == 3

    assert [len(call.to) for call in mail.outbox] == [1, 1, 1]
