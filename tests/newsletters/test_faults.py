"""The engine under faults an operator meets: a server that refuses everyone, an ESP
outage, a lost lease, two issues on one worker, an unsubscribe mid-batch, deferrals,
a forwarded preferences link. Each was a way to lose, wrongly suppress or mis-mail
subscribers; `make drill` runs the same cases against real servers."""

from __future__ import annotations

import gc
import uuid
import weakref
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from outlet.newsletters.issues import (
    issue_plan,
    issue_resume,
    issue_send_now,
    issue_sending_check,
    issues_tick,
    mail_server_available,
)
from outlet.newsletters.models import Delivery, Issue, Subscriber, Suppression
from outlet.newsletters.sending import batch_send, skeleton_for
from outlet.newsletters.services import subscriber_preferences_update
from outlet.newsletters.tasks import issue_batch_send_task
from tests.factories import IssueFactory, SubscriberFactory
from tests.newsletters.esp_endpoint import MailgunEndpoint
from tests.newsletters.smtp_sinks import RefusingSmtpSink
from tests.newsletters.test_esp_batch import MERGE_FORMAT, ScriptedEspBackend

pytestmark = pytest.mark.django_db


def start(issue: Issue) -> Issue:
    issue_send_now(issue=issue)
    issue.refresh_from_db()
    issue_plan(issue=issue)
    return issue


@pytest.fixture
def esp(settings):
    settings.EMAIL_BACKEND = "tests.newsletters.test_esp_batch.ScriptedEspBackend"
    settings.NEWSLETTER_ESP_MERGE_FIELD_FORMAT = MERGE_FORMAT
    settings.NEWSLETTER_ESP_BATCH_SIZE = 3
    mail.outbox = []
    ScriptedEspBackend.error = None
    yield
    ScriptedEspBackend.error = None


@pytest.fixture
def smtp(settings):
    sink = RefusingSmtpSink()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
    yield sink
    sink.stop()


# --- Wrong body ---------------------------------------------------------------------


def test_one_worker_alternating_two_issues_sends_each_its_own_body(esp, daily, weekly, settings):
    settings.NEWSLETTER_ESP_BATCH_SIZE = 1
    SubscriberFactory.create_batch(40, newsletters=[daily])
    SubscriberFactory.create_batch(40, newsletters=[weekly])
    first = start(IssueFactory(newsletter=daily, subject="First issue", body="<p>BODY-ONE</p>"))
    second = start(IssueFactory(newsletter=weekly, subject="Second issue", body="<p>BODY-TWO</p>"))

    for _ in range(40):  # each batch builds the other issue's skeleton anew
        batch_send(issue_id=first.pk, size=1)
        batch_send(issue_id=second.pk, size=1)

    assert len(mail.outbox) == 80
    for call in mail.outbox:
        params = call.anymail_test_params
        expected = "BODY-ONE" if params["subject"] == "First issue" else "BODY-TWO"
        assert expected in params["text_body"] and expected in params["html_body"]


def test_the_esp_template_lives_and_dies_with_its_skeleton(daily, weekly, settings):
    SubscriberFactory(newsletters=[daily])
    SubscriberFactory(newsletters=[weekly])
    issue = start(IssueFactory(newsletter=daily, body="<p>Only this</p>"))
    skeleton = skeleton_for(issue)
    assert skeleton.esp_template("{{{{{}}}}}") is skeleton.esp_template("{{{{{}}}}}")
    assert "Only this" in skeleton.esp_template("%recipient.{}%").text
    gone = weakref.ref(skeleton.esp_template("%recipient.{}%"))
    del skeleton

    other = skeleton_for(start(IssueFactory(newsletter=weekly, body="<p>Another</p>")))
    gc.collect()

    assert gone() is None  # no cache outside the skeleton keeps (or hands out) the old one
    assert "Another" in other.esp_template("%recipient.{}%").text


# --- A refusing server -------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "refusal",
    [
        {"every_rcpt": "554 5.7.1 Relay access denied"},
        {"mail_from": "553 5.7.1 Sender address rejected: not owned by user"},
        {"after_data": "554 5.7.1 Message refused: sender not verified"},
    ],
)
def test_a_server_refusing_everyone_pauses_the_issue_and_suppresses_nobody(
    smtp, daily, refusal, settings
):
    settings.NEWSLETTER_RETRY_SECONDS = 0  # the rows that tripped the pause wait this long
    readers = SubscriberFactory.create_batch(30, newsletters=[daily])
    for phase, reply in refusal.items():
        setattr(smtp, phase, reply)
    issue = start(IssueFactory(newsletter=daily))

    issue_batch_send_task(issue.pk)

    issue.refresh_from_db()
    assert issue.status == Issue.Status.PAUSED
    assert next(iter(refusal.values()))[4:] in issue.pause_reason
    assert not Suppression.objects.exists()
    assert not Subscriber.objects.exclude(status=Subscriber.Status.ACTIVE).exists()
    assert not Delivery.objects.filter(status=Delivery.Status.FAILED).exists()
    assert Delivery.objects.filter(attempts__gt=0).count() == 0

    for phase in refusal:
        setattr(smtp, phase, "")
    issue_resume(issue=issue)
    while batch_send(issue_id=issue.pk).claimed:
        pass
    assert issue_sending_check(issue_id=issue.pk)
    assert sorted(smtp.accepted) == sorted(reader.email for reader in readers)


@pytest.mark.django_db(transaction=True)
def test_a_server_deferring_everyone_pauses_and_resumes_by_itself_using_no_attempt(smtp, daily):
    SubscriberFactory.create_batch(12, newsletters=[daily])
    smtp.every_rcpt = "451 4.3.0 Try again later"
    issue = start(IssueFactory(newsletter=daily))

    issue_batch_send_task(issue.pk)

    issue.refresh_from_db()
    assert issue.status == Issue.Status.PAUSED and "451 4.3.0" in issue.pause_reason
    assert issue.auto_resume_at is not None
    rows = Delivery.objects.filter(issue=issue)
    assert {(row.status, row.attempts) for row in rows} == {(Delivery.Status.PENDING, 0)}


@pytest.mark.django_db(transaction=True)
def test_unknown_mailboxes_among_good_ones_are_still_suppressed(smtp, daily):
    SubscriberFactory.create_batch(80, newsletters=[daily])
    for number in range(8):  # eight in a row: not a server refusing everyone
        SubscriberFactory(email=f"gone{number}@example.com", newsletters=[daily])
    smtp.permanent = {f"gone{number}@example.com" for number in range(8)}
    issue = start(IssueFactory(newsletter=daily))

    batch_send(issue_id=issue.pk)

    assert Issue.objects.get(pk=issue.pk).status == Issue.Status.SENDING
    assert issue_sending_check(issue_id=issue.pk)  # 8 of 88 bounced: under the breaker's rate
    assert Suppression.objects.count() == 8
    assert len(smtp.accepted) == 80


# --- An ESP outage ----------------------------------------------------------------


@pytest.fixture
def mailgun(settings):
    """anymail's real Mailgun backend, pointed at a local Mailgun-shaped endpoint."""
    endpoint = MailgunEndpoint()
    settings.EMAIL_BACKEND = "anymail.backends.mailgun.EmailBackend"
    settings.ANYMAIL = endpoint.anymail_settings()
    settings.NEWSLETTER_ESP_MERGE_FIELD_FORMAT = ""
    settings.NEWSLETTER_ESP_BATCH_SIZE = 3
    yield endpoint
    endpoint.stop()


def test_an_esp_outage_is_not_an_attempt_and_fails_nobody(mailgun, daily, settings):
    settings.NEWSLETTER_MAX_ATTEMPTS = 2
    readers = SubscriberFactory.create_batch(6, newsletters=[daily])
    issue = start(IssueFactory(newsletter=daily))
    mailgun.failing = True

    for _ in range(5):  # longer than the attempts allow
        Issue.objects.filter(pk=issue.pk).update(status=Issue.Status.SENDING)
        issue_batch_send_task(issue.pk)

    issue.refresh_from_db()
    assert issue.status == Issue.Status.PAUSED and "503" in issue.pause_reason
    rows = Delivery.objects.filter(issue=issue)
    assert {(row.status, row.attempts) for row in rows} == {(Delivery.Status.PENDING, 0)}

    mailgun.failing = False
    Issue.objects.filter(pk=issue.pk).update(status=Issue.Status.SENDING)
    while batch_send(issue_id=issue.pk).claimed:
        pass
    assert sorted(mailgun.per_recipient().items()) == sorted((r.email, 1) for r in readers)


def test_mail_server_available_asks_the_esp(mailgun):
    mailgun.failing = True
    assert not mail_server_available()
    mailgun.failing = False
    assert mail_server_available()
    mailgun.stop()
    assert not mail_server_available()


def test_an_issue_paused_by_an_esp_outage_resumes_by_itself_when_the_esp_answers(
    mailgun, daily, settings
):
    readers = SubscriberFactory.create_batch(3, newsletters=[daily])
    issue = start(IssueFactory(newsletter=daily))
    mailgun.failing = True
    issue_batch_send_task(issue.pk)
    assert Issue.objects.get(pk=issue.pk).status == Issue.Status.PAUSED
    step = timedelta(seconds=settings.NEWSLETTER_SMTP_DOWN_RETRY_SECONDS + 1)

    assert issues_tick(now=timezone.now() + step)["resumed"] == 0
    mailgun.failing = False
    assert issues_tick(now=timezone.now() + 2 * step)["resumed"] == 1
    while batch_send(issue_id=issue.pk).claimed:
        pass
    assert issue_sending_check(issue_id=issue.pk)
    assert sorted(mailgun.per_recipient()) == sorted(r.email for r in readers)


# --- The lease -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_worker_that_lost_its_lease_sends_no_further_message(smtp, daily, settings, monkeypatch):
    from outlet.newsletters.sending import claims

    settings.NEWSLETTER_LEASE_SECONDS = 60
    SubscriberFactory.create_batch(5, newsletters=[daily])
    issue = start(IssueFactory(newsletter=daily))
    real_monotonic = claims.time.monotonic
    jump = [0.0]

    def after_first_message(address):
        # The server took longer than the lease over the first message, and another
        # lane has taken the expired rows over.
        jump[0] = 61.0
        Delivery.objects.filter(status=Delivery.Status.SENDING).update(lease_token=uuid.uuid4())

    smtp.on_accept = after_first_message
    monkeypatch.setattr(claims.time, "monotonic", lambda: real_monotonic() + jump[0])

    result = batch_send(issue_id=issue.pk)

    assert len(smtp.accepted) == 1
    assert result.stopped == "lease lost"


# --- Unsubscribe mid-batch --------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_unsubscribe_during_a_batch_stops_mail_to_that_reader(smtp, daily, settings):
    from outlet.newsletters.services import subscriber_unsubscribe

    readers = SubscriberFactory.create_batch(6, newsletters=[daily])
    leaving = readers[4]
    issue = start(IssueFactory(newsletter=daily))

    def unsubscribe_after_second(address):
        if len(smtp.accepted) == 2:
            subscriber_unsubscribe(subscriber=leaving)

    smtp.on_accept = unsubscribe_after_second
    settings.NEWSLETTER_RATE_LIMIT_PER_SECOND = 3  # the long, rate-limited batch

    batch_send(issue_id=issue.pk)

    assert leaving.email not in smtp.accepted
    assert Delivery.objects.get(subscriber=leaving).status == Delivery.Status.SKIPPED


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("leave", ["unsubscribe", "suppress", "pause"])
def test_at_full_speed_a_reader_who_leaves_mid_batch_gets_nothing_more(
    smtp, daily, settings, monkeypatch, leave
):
    """Unlimited rate: the batch asks about all of its rows left, every CHECK_SECONDS."""
    from outlet.newsletters.sending import smtp as smtp_loop
    from outlet.newsletters.services import email_suppress, subscriber_unsubscribe

    monkeypatch.setattr(smtp_loop, "CHECK_SECONDS", 1e-9)  # a check before every message
    settings.NEWSLETTER_RATE_LIMIT_PER_SECOND = 0
    readers = SubscriberFactory.create_batch(8, newsletters=[daily])
    leaving, staying_after = readers[5], readers[6:]
    issue = start(IssueFactory(newsletter=daily))

    def leave_after_second(address):
        if len(smtp.accepted) != 2:
            return
        if leave == "unsubscribe":
            subscriber_unsubscribe(subscriber=leaving)
        elif leave == "suppress":
            email_suppress(email=leaving.email, reason=Suppression.Reason.MANUAL)
        else:
            leaving.subscriptions.update(paused_until=timezone.localdate() + timedelta(days=7))

    smtp.on_accept = leave_after_second

    batch_send(issue_id=issue.pk)

    assert leaving.email not in smtp.accepted
    assert all(reader.email in smtp.accepted for reader in staying_after)
    assert Delivery.objects.get(subscriber=leaving).status == Delivery.Status.SKIPPED
    assert Delivery.objects.filter(status=Delivery.Status.SENT).count() == 7


# --- Audience rules ----------------------------------------------------------------


def test_deferrals_of_one_message_do_not_suppress_and_a_delivery_clears_them(daily, settings):
    from anymail.signals import AnymailTrackingEvent, EventType, tracking

    settings.NEWSLETTER_SOFT_BOUNCE_LIMIT = 3
    reader = SubscriberFactory(newsletters=[daily])

    def event(kind, message_id="m1"):
        tracking.send(
            sender=object,
            event=AnymailTrackingEvent(
                event_type=kind, recipient=reader.email, message_id=message_id
            ),
            esp_name="Test",
        )

    Subscriber.objects.filter(pk=reader.pk).update(soft_bounce_count=2)  # one from the limit
    for _ in range(5):  # greylisting: the same message deferred again and again
        event(EventType.DEFERRED)
    reader.refresh_from_db()
    assert reader.soft_bounce_count == 2  # deferrals are not bounces
    event(EventType.DELIVERED)
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.ACTIVE
    assert reader.soft_bounce_count == 0
    assert not Suppression.objects.exists()


def test_a_preferences_link_cannot_resubscribe_without_a_fresh_opt_in(
    daily, eager_tasks, django_capture_on_commit_callbacks
):
    reader = SubscriberFactory(newsletters=[], status=Subscriber.Status.UNSUBSCRIBED)

    with django_capture_on_commit_callbacks(execute=True):
        subscriber_preferences_update(subscriber=reader, newsletters=[daily])

    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.PENDING
    assert not reader.subscriptions.filter(confirmed_at__isnull=False).exists()
    assert [message.to for message in mail.outbox] == [[reader.email]]


def test_the_preferences_page_says_a_confirmation_was_sent_to_an_unsubscribed_address(
    client, daily, eager_tasks, django_capture_on_commit_callbacks
):
    from outlet.newsletters.tokens import preferences_token

    reader = SubscriberFactory(newsletters=[], status=Subscriber.Status.UNSUBSCRIBED)
    url = reverse("newsletters:preferences", args=[preferences_token(reader)])[1:]

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/{url}", {"newsletters": [daily.pk], "action": "save"})

    assert b"We have emailed it a link" in response.content
    assert b"Your choices are saved" not in response.content
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.PENDING


# --- Lanes ----------------------------------------------------------------------------


def test_resume_and_the_stall_check_never_multiply_lanes(
    daily, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from outlet.newsletters.issues import issue_pause

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.NEWSLETTER_SEND_LANES = 2
    settings.NEWSLETTER_BATCH_SIZE = 1
    queued: list[tuple] = []
    monkeypatch.setattr(issue_batch_send_task, "delay", lambda *args: queued.append(args))
    monkeypatch.setattr(
        issue_batch_send_task, "apply_async", lambda args, **kwargs: queued.append(tuple(args))
    )
    SubscriberFactory.create_batch(20, newsletters=[daily])
    issue = start(IssueFactory(newsletter=daily))  # two lanes
    issue_pause(issue=issue)
    with django_capture_on_commit_callbacks(execute=True):
        issue_resume(issue=issue)  # two more, while the first two are still queued
    Issue.objects.filter(pk=issue.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    issues_tick()  # the stall check: two more again
    assert len(queued) == 6

    waiting, queued[:] = list(queued), []
    for args in waiting:  # the broker delivers every one of them
        issue_batch_send_task(*args)

    assert len(queued) == 2  # only the newest lanes go on
    assert len(mail.outbox) == 2


def test_the_stall_check_revives_an_issue_sending_since_before_heartbeats(daily, monkeypatch):
    """An issue that was sending when heartbeat_at was added has none: it is stalled."""
    SubscriberFactory.create_batch(2, newsletters=[daily])
    issue = start(IssueFactory(newsletter=daily))
    revived: list[int] = []
    monkeypatch.setattr(
        "outlet.newsletters.issues._lanes_start", lambda issue_id, count=None: revived.append(1)
    )
    Issue.objects.filter(pk=issue.pk).update(heartbeat_at=None)

    assert issues_tick()["revived"] == 1
    assert revived == [1]
    assert issues_tick()["revived"] == 0  # stamped: not again until it stalls


@pytest.mark.django_db(transaction=True)
def test_a_batch_longer_than_the_lease_is_not_taken_for_a_stall(smtp, daily, settings, monkeypatch):
    """A rate-limited batch outlasting the lease renews it, and says it is alive: beat's
    stall check must not start more lanes beside it."""
    revived: list[int] = []
    settings.NEWSLETTER_LEASE_SECONDS = 2
    settings.NEWSLETTER_RATE_LIMIT_PER_SECOND = 4
    SubscriberFactory.create_batch(14, newsletters=[daily])
    issue = start(IssueFactory(newsletter=daily))
    monkeypatch.setattr(
        "outlet.newsletters.issues._lanes_start", lambda issue_id, count=None: revived.append(1)
    )
    seen: list[int] = []

    def tick_at_the_end(address):
        if len(smtp.accepted) == 13:  # about three seconds in: past the lease
            seen.append(issues_tick()["revived"])

    smtp.on_accept = tick_at_the_end

    batch_send(issue_id=issue.pk)

    assert len(smtp.accepted) == 14
    assert seen == [0] and revived == []


def test_a_preferences_link_of_a_suppressed_address_changes_nothing_and_claims_no_save(
    client, daily, eager_tasks, django_capture_on_commit_callbacks
):
    from outlet.newsletters.tokens import preferences_token

    reader = SubscriberFactory(newsletters=[], status=Subscriber.Status.BOUNCED)
    Suppression.objects.create(email_hash=reader.email_hash, reason="hard_bounce")
    url = reverse("newsletters:preferences", args=[preferences_token(reader)])[1:]

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/{url}", {"newsletters": [daily.pk], "action": "save"})

    assert b"Your choices are saved" not in response.content
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.BOUNCED
    assert not reader.subscriptions.exists()
    assert mail.outbox == []


def test_an_esp_refusing_the_request_pauses_for_the_editor_and_fails_nobody(mailgun, daily):
    SubscriberFactory.create_batch(4, newsletters=[daily])
    issue = start(IssueFactory(newsletter=daily))
    mailgun.failing, mailgun.failing_status = True, 401

    issue_batch_send_task(issue.pk)

    issue.refresh_from_db()
    assert issue.status == Issue.Status.PAUSED and "401" in issue.pause_reason
    assert issue.auto_resume_at is None  # a key or domain to fix: the editor resumes
    rows = Delivery.objects.filter(issue=issue)
    assert {(row.status, row.attempts) for row in rows} == {(Delivery.Status.PENDING, 0)}


def test_one_address_the_esp_cannot_parse_fails_alone_and_everyone_else_is_mailed(
    mailgun, daily, settings
):
    """Mailgun refuses a whole call (400) for one address it cannot parse: the chunk
    goes again one address per call, and only that address fails, unsuppressed."""
    readers = SubscriberFactory.create_batch(5, newsletters=[daily])
    odd = SubscriberFactory(email="odd@example.com", newsletters=[daily])
    readers += SubscriberFactory.create_batch(5, newsletters=[daily])
    mailgun.invalid = {odd.email}
    settings.NEWSLETTER_ESP_BATCH_SIZE = 4
    issue = start(IssueFactory(newsletter=daily))

    while batch_send(issue_id=issue.pk).claimed:
        pass

    assert Issue.objects.get(pk=issue.pk).status == Issue.Status.SENDING
    assert sorted(mailgun.per_recipient().items()) == sorted((r.email, 1) for r in readers)
    row = Delivery.objects.get(subscriber=odd)
    assert row.status == Delivery.Status.FAILED and "not a valid address" in row.error
    assert not Suppression.objects.exists()
    assert issue_sending_check(issue_id=issue.pk)


def test_an_esp_refusing_every_call_with_400_pauses_and_fails_nobody(mailgun, daily, settings):
    """A 400 for every call (a sender the service does not accept) is no bad address."""
    settings.NEWSLETTER_RETRY_SECONDS = 0  # the rows that paused it come back at once
    settings.NEWSLETTER_ESP_BATCH_SIZE = 4
    readers = SubscriberFactory.create_batch(9, newsletters=[daily])
    mailgun.invalid = {reader.email for reader in readers}
    issue = start(IssueFactory(newsletter=daily))

    issue_batch_send_task(issue.pk)

    issue.refresh_from_db()
    assert issue.status == Issue.Status.PAUSED and "not a valid address" in issue.pause_reason
    assert issue.auto_resume_at is None
    assert not Delivery.objects.filter(status=Delivery.Status.FAILED).exists()
    assert not Delivery.objects.filter(attempts__gt=0).exists()
    assert not Suppression.objects.exists()

    mailgun.invalid = set()
    issue_resume(issue=issue)
    while batch_send(issue_id=issue.pk).claimed:
        pass
    assert sorted(mailgun.per_recipient().items()) == sorted((r.email, 1) for r in readers)


def test_a_lone_address_the_esp_refuses_is_retried_then_fails_without_a_pause(
    mailgun, daily, settings
):
    """Nobody else in its batch to tell the service from the address: no verdict, so it
    is retried like a temporary refusal, and fails (unsuppressed) when its attempts are
    used up; one refusal is not "the service refuses everyone", so nothing pauses."""
    settings.NEWSLETTER_RETRY_SECONDS = 0
    odd = SubscriberFactory(email="odd@example.com", newsletters=[daily])
    mailgun.invalid = {odd.email}
    issue = start(IssueFactory(newsletter=daily))

    while batch_send(issue_id=issue.pk).claimed:
        assert Issue.objects.get(pk=issue.pk).status == Issue.Status.SENDING

    row = Delivery.objects.get(subscriber=odd)
    assert row.status == Delivery.Status.FAILED
    assert row.attempts == settings.NEWSLETTER_MAX_ATTEMPTS
    assert issue_sending_check(issue_id=issue.pk)
    assert not Suppression.objects.exists()


# --- Refusals of a few readers ------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "dead_reply",
    ["550 No such user", "450 4.1.1 Mailbox unknown, try later", "550 5.7.1 Domain blocked"],
)
def test_five_dead_addresses_in_a_row_pause_once_and_everyone_else_is_mailed(
    smtp, daily, settings, dead_reply
):
    settings.NEWSLETTER_RETRY_SECONDS = 0  # the rows that paused it come back at once
    good_before = SubscriberFactory.create_batch(2, newsletters=[daily])
    dead = [SubscriberFactory(email=f"dead{n}@gone.test", newsletters=[daily]) for n in range(5)]
    # Enough good readers that five dead ones stay under the bounce-rate breaker's rate.
    good_after = SubscriberFactory.create_batch(60, newsletters=[daily])
    dead_emails = {reader.email for reader in dead}
    smtp.rcpt_reply = lambda address: dead_reply if address in dead_emails else None
    issue = start(IssueFactory(newsletter=daily))

    issue_batch_send_task(issue.pk)
    issue.refresh_from_db()
    assert issue.status == Issue.Status.PAUSED  # five in a row look like the server
    issue_resume(issue=issue)
    for _ in range(3):
        issue_batch_send_task(issue.pk)

    issue.refresh_from_db()
    assert issue.status != Issue.Status.PAUSED
    good = {reader.email for reader in good_before + good_after}
    assert set(smtp.accepted) == good
    wrongly_suppressed = Suppression.objects.exclude(
        email_hash__in=[Subscriber.objects.get(pk=reader.pk).email_hash for reader in dead]
    )
    assert not wrongly_suppressed.exists()
    if "5.7." in dead_reply or dead_reply.startswith("4"):
        assert not Suppression.objects.exists()
        assert not Delivery.objects.filter(status=Delivery.Status.FAILED).exists()


@pytest.mark.django_db(transaction=True)
def test_a_relay_denying_outside_domains_fails_and_suppresses_nobody(smtp, daily):
    readers = []
    for number in range(4):
        readers += [SubscriberFactory(email=f"r{number}{k}@example.com", newsletters=[daily])
                    for k in range(3)]  # fmt: skip
        readers.append(SubscriberFactory(email=f"staff{number}@newsroom.test", newsletters=[daily]))
    smtp.rcpt_reply = lambda address: (
        None if address.endswith("@newsroom.test") else "554 5.7.1 Relay access denied"
    )
    issue = start(IssueFactory(newsletter=daily))

    batch_send(issue_id=issue.pk)

    assert sorted(smtp.accepted) == [f"staff{n}@newsroom.test" for n in range(4)]
    assert not Suppression.objects.exists()
    assert not Delivery.objects.filter(status=Delivery.Status.FAILED).exists()
    assert Delivery.objects.filter(status=Delivery.Status.PENDING).count() == 12


@pytest.mark.django_db(transaction=True)
def test_a_full_mailbox_is_a_soft_bounce_not_a_suppression(smtp, daily):
    full = SubscriberFactory(email="full@example.com", newsletters=[daily])
    SubscriberFactory.create_batch(3, newsletters=[daily])
    smtp.rcpt_reply = lambda address: "552 5.2.2 Mailbox full" if address == full.email else None
    issue = start(IssueFactory(newsletter=daily))

    batch_send(issue_id=issue.pk)

    full.refresh_from_db()
    assert not Suppression.objects.exists()
    assert full.soft_bounce_count == 1
    assert Delivery.objects.get(subscriber=full).status == Delivery.Status.PENDING


# --- An ESP sent one message at a time ---------------------------------------------


@pytest.mark.parametrize("status", [503, 401])
def test_an_esp_failing_one_message_calls_pauses_and_fails_nobody(mailgun, daily, settings, status):
    """anymail's Mailgun backend with batching off: the per-message path, as for an ESP
    without batch sending. A failed API call is no attempt on anybody."""
    settings.NEWSLETTER_ESP_MERGE_FIELD_FORMAT = "off"
    settings.NEWSLETTER_MAX_ATTEMPTS = 2
    readers = SubscriberFactory.create_batch(8, newsletters=[daily])
    issue = start(IssueFactory(newsletter=daily))
    mailgun.failing, mailgun.failing_status = True, status

    for _ in range(4):  # longer than the attempts allow
        Issue.objects.filter(pk=issue.pk).update(status=Issue.Status.SENDING)
        issue_batch_send_task(issue.pk)

    issue.refresh_from_db()
    assert issue.status == Issue.Status.PAUSED and str(status) in issue.pause_reason
    assert (issue.auto_resume_at is None) == (status == 401)  # a refused key: the editor
    rows = Delivery.objects.filter(issue=issue)
    assert {(row.status, row.attempts) for row in rows} == {(Delivery.Status.PENDING, 0)}
    assert not Suppression.objects.exists()

    mailgun.failing = False
    Issue.objects.filter(pk=issue.pk).update(status=Issue.Status.SENDING)
    while batch_send(issue_id=issue.pk).claimed:
        pass
    assert sorted(mailgun.per_recipient().items()) == sorted((r.email, 1) for r in readers)


def test_an_unsubscribe_during_an_esp_rate_limit_wait_stops_mail_to_that_reader(
    esp, daily, settings, monkeypatch
):
    from outlet.newsletters.sending.batch import RateLimiter
    from outlet.newsletters.services import subscriber_unsubscribe

    readers = SubscriberFactory.create_batch(3, newsletters=[daily])
    leaving = readers[1]
    issue = start(IssueFactory(newsletter=daily))
    settings.NEWSLETTER_RATE_LIMIT_PER_SECOND = 1000

    def waiting(self):  # the reader leaves while the batch waits for its turn
        if Subscriber.objects.get(pk=leaving.pk).status == Subscriber.Status.ACTIVE:
            subscriber_unsubscribe(subscriber=leaving)

    monkeypatch.setattr(RateLimiter, "acquire", waiting)

    batch_send(issue_id=issue.pk)

    mailed = " ".join(str(call.anymail_test_params.get("to")) for call in mail.outbox)
    assert readers[0].email in mailed and leaving.email not in mailed
    assert Delivery.objects.get(subscriber=leaving).status == Delivery.Status.SKIPPED


def test_a_preferences_link_adds_a_newsletter_only_through_its_opt_in(
    daily, weekly, eager_tasks, django_capture_on_commit_callbacks
):
    from outlet.newsletters.models import Subscription

    reader = SubscriberFactory(newsletters=[daily])
    Subscription.objects.create(subscriber=reader, newsletter=weekly, confirmed_at=None)

    with django_capture_on_commit_callbacks(execute=True):
        subscriber_preferences_update(subscriber=reader, newsletters=[daily, weekly])

    subscriptions = {s.newsletter_id: s.confirmed_at for s in reader.subscriptions.all()}
    assert subscriptions[daily.pk] is not None
    assert subscriptions[weekly.pk] is None  # still waiting for the mailbox's owner
    assert [message.to for message in mail.outbox] == [[reader.email]]


def test_an_esp_rejecting_a_whole_chunk_pauses_and_suppresses_nobody(esp, daily, settings):
    from tests.newsletters.test_esp_batch import ScriptedEspBackend

    settings.NEWSLETTER_ESP_BATCH_SIZE = 6
    readers = SubscriberFactory.create_batch(6, newsletters=[daily])
    issue = start(IssueFactory(newsletter=daily))
    settings.NEWSLETTER_RETRY_SECONDS = 0
    ScriptedEspBackend.statuses = {reader.email: "rejected" for reader in readers}
    try:
        issue_batch_send_task(issue.pk)

        issue.refresh_from_db()
        assert issue.status == Issue.Status.PAUSED and issue.auto_resume_at is None
        assert not Suppression.objects.exists()
        rows = Delivery.objects.filter(issue=issue)
        assert {(row.status, row.attempts) for row in rows} == {(Delivery.Status.PENDING, 0)}

        # After the editor's resume, a dead address among them is judged on its own.
        ScriptedEspBackend.statuses = {readers[0].email: "rejected"}
        issue_resume(issue=issue)
        batch_send(issue_id=issue.pk)
        assert issue_sending_check(issue_id=issue.pk)  # one bounce in six: not a broken ESP
    finally:
        ScriptedEspBackend.statuses = {}
    assert Suppression.objects.count() == 1
    assert Delivery.objects.filter(status=Delivery.Status.SENT).count() == 5
