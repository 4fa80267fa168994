"""The fan-out engine in one process: who gets an issue, what the message carries,
claims and leases, retries, suppression, pause and an SMTP outage."""

from __future__ import annotations

import smtplib
import time
from datetime import timedelta
from email import policy
from email.parser import BytesParser

import pytest
from django.core import mail
from django.utils import timezone

from outlet.core.addresses import email_digest
from outlet.newsletters.issues import (
    issue_pause,
    issue_plan,
    issue_send_now,
    issue_sending_check,
    issues_tick,
)
from outlet.newsletters.measuring.links import delivery_slot, issue_bodies_track
from outlet.newsletters.models import Delivery, Issue, Subscriber, Suppression
from outlet.newsletters.sending import batch_send, deliveries_claim, deliveries_plan
from outlet.newsletters.services import subscriber_unsubscribe
from outlet.newsletters.tasks import issue_batch_send_task, issue_plan_task
from tests.conftest import free_port
from tests.factories import ArticleFactory, IssueFactory, SubscriberFactory
from tests.newsletters.smtp_sinks import RefusingSmtpSink

pytestmark = pytest.mark.django_db


def parsed(message):
    return BytesParser(policy=policy.default).parsebytes(message.message().as_bytes())


def send_everything(issue: Issue) -> Issue:
    """What the workers do, in this process: start, plan, batches until done."""
    issue_send_now(issue=issue)
    issue.refresh_from_db()
    issue_plan(issue=issue)
    while batch_send(issue_id=issue.pk, size=7).claimed:
        pass
    issue_sending_check(issue_id=issue.pk)
    issue.refresh_from_db()
    return issue


@pytest.fixture(autouse=True)
def _locmem_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.NEWSLETTER_RETRY_SECONDS = 60


def test_every_active_subscriber_of_the_list_gets_exactly_one_copy(daily, weekly):
    readers = SubscriberFactory.create_batch(20, newsletters=[daily])
    SubscriberFactory(newsletters=[weekly])
    SubscriberFactory(newsletters=[daily], status=Subscriber.Status.UNSUBSCRIBED)
    SubscriberFactory(newsletters=[daily], status=Subscriber.Status.PENDING)
    suppressed = SubscriberFactory(newsletters=[daily])
    Suppression.objects.create(email_hash=suppressed.email_hash, reason="manual")
    issue = IssueFactory(newsletter=daily)

    issue = send_everything(issue)

    recipients = sorted(address for message in mail.outbox for address in message.to)
    assert recipients == sorted(reader.email for reader in readers)
    assert issue.status == Issue.Status.SENT
    assert issue.planned_count == 20
    assert Delivery.objects.filter(issue=issue, status=Delivery.Status.SENT).count() == 20


def test_message_carries_list_headers_personal_links_and_both_parts(daily, settings):
    reader = SubscriberFactory(newsletters=[daily], name="Ana Lima", email="ana@example.com")
    daily.from_name, daily.reply_to = "The Daily Briefing", "letters@outlet.test"
    daily.save()
    article = ArticleFactory(headline="How the map was drawn", dek="Lines on a map.")
    issue = IssueFactory(newsletter=daily, subject="Maps and money", articles=[article])

    send_everything(issue)

    (message,) = mail.outbox
    email = parsed(message)
    delivery = Delivery.objects.get(issue=issue, subscriber=reader)
    assert email["Message-ID"] == f"<issue-{issue.pk}.delivery-{delivery.pk}@127.0.0.1>"
    assert email["From"] == "The Daily Briefing <newsletters@outlet.test>"
    assert email["Reply-To"] == "letters@outlet.test"
    assert email["To"] == "ana@example.com"
    assert email["Subject"] == "Maps and money"
    assert email["Date"]
    assert email["List-Id"] == "The Daily Briefing <daily.127.0.0.1>"
    assert "/newsletter/unsubscribe/" in email["List-Unsubscribe"]
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert email.get_content_type() == "multipart/alternative"
    text = email.get_body(("plain",)).get_content()
    html = email.get_body(("html",)).get_content()
    unsubscribe = email["List-Unsubscribe"].split(">")[0].lstrip("<")
    for body in (text, html):
        assert "Hi Ana," in body
        assert unsubscribe in body
        assert "/account/" in body and "/newsletter/preferences/" not in body
        assert "How the map was drawn" in body
        assert settings.OUTLET_POSTAL_ADDRESS in body
    assert 'style="' in html  # CSS inlined
    issue.refresh_from_db()
    # The frozen render, its links tracked (measuring/links.py), then personalised.
    tracked_html, _ = issue_bodies_track(
        issue=issue, html=issue.rendered_html, text=issue.rendered_text
    )
    tracked_html = tracked_html.replace("@@DELIVERY@@", delivery_slot(issue.pk, delivery.pk))
    assert html.replace("\r\n", "\n") == tracked_html.replace(
        "@@UNSUBSCRIBE_URL@@", unsubscribe.replace("&", "&amp;")
    ).replace("@@PREFERENCES_URL@@", html.split('href="')[-2].split('"')[0]).replace(
        "@@GREETING@@", "Hi Ana,"
    )
    head, _, body = message.message().as_bytes().partition(b"\r\n\r\n")
    assert max(len(line) for line in head.split(b"\r\n")) <= 998
    assert max(len(line) for line in body.split(b"\r\n")) <= 76  # quoted-printable's rule
    assert len(html.encode()) < 100 * 1024


def test_each_subscriber_gets_their_own_unsubscribe_link(daily):
    SubscriberFactory.create_batch(3, newsletters=[daily])

    send_everything(IssueFactory(newsletter=daily))

    links = {parsed(message)["List-Unsubscribe"] for message in mail.outbox}
    assert len(links) == 3


def test_list_unsubscribe_stays_a_plain_header_whoever_serialises_the_message(daily):
    # An internationalised address is serialised by Django (not the skeleton), with
    # the SMTP backend's policy: at its 78-character lines the email package would turn
    # the long, unbreakable <URL> into RFC 2047 encoded-words no mail client reads.
    SubscriberFactory(newsletters=[daily], email="josé.ramírez@example.org")
    SubscriberFactory(newsletters=[daily], email="plain@example.org")

    send_everything(IssueFactory(newsletter=daily))

    for message in mail.outbox:
        raw = message.message(policy=policy.SMTP).as_bytes()
        header = raw.split(b"List-Unsubscribe: ", 1)[1].split(b"\r\n", 1)[0]
        assert header.startswith(b"<http") and b"=?utf-8?" not in header, header


def test_subscriber_who_unsubscribes_after_planning_is_not_mailed(daily):
    stays, leaves = SubscriberFactory.create_batch(2, newsletters=[daily])
    issue = IssueFactory(newsletter=daily)
    issue_send_now(issue=issue)
    issue_plan(issue=Issue.objects.get(pk=issue.pk))

    subscriber_unsubscribe(subscriber=leaves)
    while batch_send(issue_id=issue.pk).claimed:
        pass

    assert [message.to for message in mail.outbox] == [[stays.email]]
    assert Delivery.objects.get(subscriber=leaves).status == Delivery.Status.SKIPPED


def test_planning_twice_adds_no_delivery(daily):
    SubscriberFactory.create_batch(5, newsletters=[daily])
    issue = IssueFactory(newsletter=daily)
    issue_send_now(issue=issue)

    assert deliveries_plan(issue=issue) == 5
    assert deliveries_plan(issue=issue) == 5
    assert Delivery.objects.filter(issue=issue).count() == 5


def test_plan_task_run_twice_plans_once(daily):
    SubscriberFactory.create_batch(4, newsletters=[daily])
    issue = IssueFactory(newsletter=daily)
    issue_send_now(issue=issue)

    issue_plan_task(issue.pk)
    issue_plan_task(issue.pk)

    assert Delivery.objects.filter(issue=issue).count() == 4


def test_batch_task_run_twice_mails_each_subscriber_once(daily):
    readers = SubscriberFactory.create_batch(3, newsletters=[daily])
    issue = IssueFactory(newsletter=daily)
    issue_send_now(issue=issue)
    deliveries_plan(issue=issue)

    issue_batch_send_task(issue.pk, 0)
    issue_batch_send_task(issue.pk, 0)

    assert sorted(m.to[0] for m in mail.outbox) == sorted(r.email for r in readers)
    assert Issue.objects.get(pk=issue.pk).status == Issue.Status.SENT


def test_two_claims_never_share_a_row_and_a_live_lease_is_respected(daily):
    SubscriberFactory.create_batch(10, newsletters=[daily])
    issue = IssueFactory(newsletter=daily)
    issue_send_now(issue=issue)
    deliveries_plan(issue=issue)

    _, first, _ = deliveries_claim(issue_id=issue.pk, size=6)
    _, second, _ = deliveries_claim(issue_id=issue.pk, size=6)
    _, third, _ = deliveries_claim(issue_id=issue.pk, size=6)

    assert len(first) == 6 and len(second) == 4 and third == []
    assert not {d.pk for d in first} & {d.pk for d in second}


def test_rows_of_a_dead_worker_are_claimed_again_after_the_lease(daily):
    SubscriberFactory.create_batch(3, newsletters=[daily])
    issue = IssueFactory(newsletter=daily)
    issue_send_now(issue=issue)
    deliveries_plan(issue=issue)
    deliveries_claim(issue_id=issue.pk, size=3)  # a worker claims, then dies

    assert batch_send(issue_id=issue.pk).claimed == 0
    Delivery.objects.filter(issue=issue).update(leased_until=timezone.now() - timedelta(1))
    result = batch_send(issue_id=issue.pk)

    assert result.claimed == 3 and result.sent == 3
    assert len(mail.outbox) == 3


def test_a_late_worker_cannot_overwrite_the_outcome_of_the_one_that_took_over(daily):
    SubscriberFactory(newsletters=[daily])
    issue = IssueFactory(newsletter=daily)
    issue_send_now(issue=issue)
    deliveries_plan(issue=issue)
    from outlet.newsletters.sending import OutcomeRecorder

    old_token, (delivery,), _ = deliveries_claim(issue_id=issue.pk, size=1)
    Delivery.objects.filter(pk=delivery.pk).update(leased_until=timezone.now() - timedelta(1))
    deliveries_claim(issue_id=issue.pk, size=1)  # taken over

    OutcomeRecorder(old_token).failed(delivery, "too late")

    assert Delivery.objects.get(pk=delivery.pk).status == Delivery.Status.SENDING


@pytest.mark.parametrize(
    "record",
    [
        lambda recorder, delivery: recorder.sent(delivery),
        lambda recorder, delivery: recorder.failed(delivery, "too late"),
        lambda recorder, delivery: recorder.retry_later(delivery, "too late"),
        lambda recorder, delivery: recorder.skipped([delivery]),
        lambda recorder, delivery: recorder.release([delivery]),
        lambda recorder, delivery: recorder.release([delivery], paused_by="550 too late"),
    ],
    ids=["sent", "failed", "retry_later", "skipped", "release", "release_paused"],
)
def test_a_worker_that_lost_its_lease_changes_nothing_about_the_row(daily, record):
    SubscriberFactory(newsletters=[daily])
    issue = IssueFactory(newsletter=daily)
    issue_send_now(issue=issue)
    deliveries_plan(issue=issue)
    from outlet.newsletters.sending import OutcomeRecorder

    old_token, (delivery,), _ = deliveries_claim(issue_id=issue.pk, size=1)
    Delivery.objects.filter(pk=delivery.pk).update(leased_until=timezone.now() - timedelta(1))
    new_token, (taken_over,), _ = deliveries_claim(issue_id=issue.pk, size=1)
    before = Delivery.objects.filter(pk=delivery.pk).values().get()

    with OutcomeRecorder(old_token) as recorder:
        record(recorder, delivery)

    after = Delivery.objects.filter(pk=delivery.pk).values().get()
    assert taken_over.pk == delivery.pk
    assert after == before
    assert (after["status"], after["lease_token"]) == (Delivery.Status.SENDING, new_token)
    assert after["sent_at"] is None


def test_pause_stops_handing_out_batches(daily):
    SubscriberFactory.create_batch(3, newsletters=[daily])
    issue = IssueFactory(newsletter=daily)
    issue_send_now(issue=issue)
    deliveries_plan(issue=issue)

    issue_pause(issue=issue)
    result = batch_send(issue_id=issue.pk)

    assert result.claimed == 0 and mail.outbox == []


@pytest.mark.django_db(transaction=True)
def test_temporary_refusal_is_retried_later_and_permanent_refusal_suppresses(settings, daily):
    sink = RefusingSmtpSink(temporary={"busy@example.com"}, permanent={"gone@example.com"})
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
        for email in ("ok@example.com", "busy@example.com", "gone@example.com"):
            SubscriberFactory(email=email, newsletters=[daily])
        issue = IssueFactory(newsletter=daily)
        issue_send_now(issue=issue)
        deliveries_plan(issue=issue)

        result = batch_send(issue_id=issue.pk)

        assert (result.sent, result.retry, result.failed) == (1, 1, 1)
        busy = Delivery.objects.get(subscriber__email="busy@example.com")
        assert busy.status == Delivery.Status.PENDING
        assert busy.next_attempt_at > timezone.now() + timedelta(seconds=50)
        assert "451" in busy.error
        gone = Delivery.objects.get(subscriber__email="gone@example.com")
        assert gone.status == Delivery.Status.FAILED and "550" in gone.error
        assert not issue_sending_check(issue_id=issue.pk)  # busy is still to come

        sink.temporary.clear()
        Delivery.objects.filter(pk=busy.pk).update(next_attempt_at=timezone.now())
        assert batch_send(issue_id=issue.pk).sent == 1
        assert issue_sending_check(issue_id=issue.pk)
        # Suppressed once the bounce-rate breaker judged the issue's window: at its end here.
        assert Suppression.objects.filter(email_hash=email_digest("gone@example.com")).exists()
        assert Suppression.objects.count() == 1
        assert sorted(sink.accepted) == ["busy@example.com", "ok@example.com"]
    finally:
        sink.stop()


@pytest.mark.django_db(transaction=True)
def test_mail_server_down_pauses_with_a_reason_and_resumes_losing_no_one(settings, daily):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nothing listens
    readers = SubscriberFactory.create_batch(4, newsletters=[daily])
    issue = IssueFactory(newsletter=daily)
    issue_send_now(issue=issue)
    deliveries_plan(issue=issue)

    issue_batch_send_task(issue.pk, 0)

    issue.refresh_from_db()
    assert issue.status == Issue.Status.PAUSED
    assert "Mail server unreachable" in issue.pause_reason
    assert Delivery.objects.filter(issue=issue, status=Delivery.Status.PENDING).count() == 4
    assert set(Delivery.objects.values_list("attempts", flat=True)) == {0}

    later = timezone.now() + timedelta(seconds=settings.NEWSLETTER_SMTP_DOWN_RETRY_SECONDS + 1)
    assert issues_tick(now=later)["resumed"] == 0  # still down: stays paused
    assert Issue.objects.get(pk=issue.pk).status == Issue.Status.PAUSED

    sink = RefusingSmtpSink()
    try:
        settings.EMAIL_PORT = sink.port
        later += timedelta(seconds=settings.NEWSLETTER_SMTP_DOWN_RETRY_SECONDS + 1)
        assert issues_tick(now=later)["resumed"] == 1
        while batch_send(issue_id=issue.pk).claimed:
            pass
        assert issue_sending_check(issue_id=issue.pk)
        assert sorted(sink.accepted) == sorted(reader.email for reader in readers)
    finally:
        sink.stop()


@pytest.mark.django_db(transaction=True)
def test_dropped_connection_mid_batch_retries_that_message_and_goes_on(settings, daily):
    sink = RefusingSmtpSink(drop_once={"flaky@example.com"})
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
        for email in ("a@example.com", "flaky@example.com", "z@example.com"):
            SubscriberFactory(email=email, newsletters=[daily])
        issue = IssueFactory(newsletter=daily)
        issue_send_now(issue=issue)
        deliveries_plan(issue=issue)

        result = batch_send(issue_id=issue.pk)

        assert (result.sent, result.retry) == (2, 1)
        assert sorted(sink.accepted) == ["a@example.com", "z@example.com"]
    finally:
        sink.stop()


@pytest.mark.django_db(transaction=True)
def test_message_refused_after_its_content_fails_and_the_next_one_still_goes(settings, daily):
    """With PIPELINING the next envelope follows a message's content in the same write;
    a refusal of that content must not disturb the message behind it."""
    sink = RefusingSmtpSink(content_refused={"spam@example.com"})
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
        for email in ("a@example.com", "spam@example.com", "z@example.com"):
            SubscriberFactory(email=email, newsletters=[daily])
        issue = IssueFactory(newsletter=daily)
        issue_send_now(issue=issue)
        deliveries_plan(issue=issue)

        result = batch_send(issue_id=issue.pk)

        assert (result.sent, result.failed, result.retry) == (2, 0, 1)
        assert sorted(sink.accepted) == ["a@example.com", "z@example.com"]
        refused = Delivery.objects.get(subscriber__email="spam@example.com")
        # 5.7.1 is the server's policy, not the reader's fault: retried, never failed.
        assert refused.status == Delivery.Status.PENDING and "554" in refused.error
        # Refused content is no verdict on the address: it is not suppressed.
        assert not Suppression.objects.filter(email_hash=email_digest("spam@example.com")).exists()
    finally:
        sink.stop()


@pytest.mark.django_db(transaction=True)
def test_a_server_without_pipelining_gets_one_command_at_a_time(settings, daily):
    sink = RefusingSmtpSink(pipelining=False, permanent={"gone@example.com"})
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
        for email in ("a@example.com", "gone@example.com", "z@example.com"):
            SubscriberFactory(email=email, newsletters=[daily])
        issue = IssueFactory(newsletter=daily)
        issue_send_now(issue=issue)
        deliveries_plan(issue=issue)

        result = batch_send(issue_id=issue.pk)

        assert (result.sent, result.failed) == (2, 1)
        assert sorted(sink.accepted) == ["a@example.com", "z@example.com"]
    finally:
        sink.stop()


def test_plan_gives_postgresql_statistics_for_the_tables_batches_read(daily):
    """Without statistics PostgreSQL plans each batch's lookups by id as sequential
    scans of every delivery and subscriber (autovacuum may be off, or not yet run)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("planner statistics are a PostgreSQL matter")
    SubscriberFactory.create_batch(3, newsletters=[daily])
    issue = IssueFactory(newsletter=daily)
    issue_send_now(issue=issue)

    deliveries_plan(issue=issue)

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relname IN "
            "('newsletters_delivery', 'newsletters_subscriber') AND reltuples < 0"
        )
        assert cursor.fetchall() == []


def test_smtp_error_classes_are_what_the_engine_expects():
    # The engine tells temporary from permanent by these attributes.
    assert smtplib.SMTPRecipientsRefused({"a@b": (550, b"no")}).recipients["a@b"][0] == 550
    assert smtplib.SMTPDataError(451, b"later").smtp_code == 451


def test_global_rate_limit_spaces_out_messages(daily, settings):
    settings.NEWSLETTER_RATE_LIMIT_PER_SECOND = 10
    SubscriberFactory.create_batch(25, newsletters=[daily])
    issue = IssueFactory(newsletter=daily)
    issue_send_now(issue=issue)
    deliveries_plan(issue=issue)

    started = time.monotonic()
    assert batch_send(issue_id=issue.pk).sent == 25
    elapsed = time.monotonic() - started

    assert elapsed >= 1.0  # 25 messages at 10 a second span at least three clock seconds
    assert len(mail.outbox) == 25


@pytest.mark.parametrize("length", range(60, 170))
def test_a_personal_value_of_any_length_keeps_quoted_printable_lines_within_76(length):
    """The values differ per reader (a longer delivery id makes a longer tracked link):
    whatever their length, every encoded line keeps quoted-printable's limit and the
    body decodes to the text with the values in place."""
    import quopri

    from outlet.newsletters.sending.rendering import UNSUBSCRIBE_MARK
    from outlet.newsletters.sending.skeleton import QpTemplate

    value = ("https://news.example.org/n/c/12.3.abcdefghijklmnop.4567.é-" * 4)[:length]
    text = f"Read it: {UNSUBSCRIBE_MARK}\r\nThanks.\r\n"
    body = QpTemplate(text).fill({UNSUBSCRIBE_MARK: value})

    assert max(len(line) for line in body.split(b"\r\n")) <= 76
    assert quopri.decodestring(body).decode() == text.replace(UNSUBSCRIBE_MARK, value)
