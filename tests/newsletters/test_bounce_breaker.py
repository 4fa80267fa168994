"""The bounce-rate breaker: a relay that answers "550 5.1.1" to every address is not a
list of dead mailboxes. Past NEWSLETTER_BOUNCE_BREAKER_RATE of a window's messages the
issue pauses for the editor, the hard bounces are held (nobody suppressed) and the
editor confirms or lifts them; a few real dead addresses are still suppressed."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.exceptions import ValidationError

from outlet.newsletters.issues import (
    issue_plan,
    issue_resume,
    issue_send_now,
    issue_sending_check,
)
from outlet.newsletters.models import Delivery, HeldBounce, Issue, Subscriber, Suppression
from outlet.newsletters.sending import batch_send
from outlet.newsletters.sending.breaker import (
    issue_held_bounces_confirm,
    issue_held_bounces_lift,
)
from outlet.newsletters.tasks import issue_batch_send_task
from tests.factories import IssueFactory, SubscriberFactory
from tests.newsletters.smtp_sinks import RefusingSmtpSink
from tests.newsletters.test_esp_batch import MERGE_FORMAT, ScriptedEspBackend

pytestmark = pytest.mark.django_db(transaction=True)

UNKNOWN = "550 5.1.1 <{}>: Recipient address rejected: User unknown"


def start(issue: Issue) -> Issue:
    issue_send_now(issue=issue)
    issue.refresh_from_db()
    issue_plan(issue=issue)
    return issue


def send_until_done(issue: Issue) -> Issue:
    while batch_send(issue_id=issue.pk, size=10).claimed:
        pass
    issue_sending_check(issue_id=issue.pk)
    issue.refresh_from_db()
    return issue


def nobody_suppressed() -> bool:
    return (
        not Suppression.objects.exists()
        and not Subscriber.objects.exclude(status=Subscriber.Status.ACTIVE).exists()
    )


@pytest.fixture
def smtp(settings):
    sink = RefusingSmtpSink()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
    settings.NEWSLETTER_BOUNCE_BREAKER_RATE = 0.1
    settings.NEWSLETTER_BOUNCE_BREAKER_SAMPLE = 200
    yield sink
    sink.stop()


@pytest.fixture
def esp(settings):
    settings.EMAIL_BACKEND = "tests.newsletters.test_esp_batch.ScriptedEspBackend"
    settings.NEWSLETTER_ESP_MERGE_FIELD_FORMAT = MERGE_FORMAT
    settings.NEWSLETTER_ESP_BATCH_SIZE = 3  # below the "whole call refused" rule
    settings.NEWSLETTER_BOUNCE_BREAKER_RATE = 0.1
    settings.NEWSLETTER_BOUNCE_BREAKER_SAMPLE = 200
    mail.outbox = []
    ScriptedEspBackend.statuses = {}
    ScriptedEspBackend.error = None
    yield ScriptedEspBackend
    ScriptedEspBackend.statuses = {}


# --- A relay refusing every mailbox ------------------------------------------------


def test_a_relay_answering_5_1_1_to_everyone_pauses_the_issue_and_suppresses_nobody(smtp, daily):
    readers = SubscriberFactory.create_batch(40, newsletters=[daily])
    smtp.rcpt_reply = lambda address: UNKNOWN.format(address)
    issue = start(IssueFactory(newsletter=daily))

    issue_batch_send_task(issue.pk)  # the one batch
    issue_batch_send_task(issue.pk)  # nothing left to claim: the issue's last window is judged

    issue.refresh_from_db()
    assert issue.status == Issue.Status.PAUSED
    assert issue.auto_resume_at is None  # the editor decides
    assert "40 of 40" in issue.pause_reason
    assert nobody_suppressed()
    assert HeldBounce.objects.filter(issue=issue, for_editor=True).count() == len(readers)


def test_the_breaker_trips_within_a_window_and_later_bounces_wait_for_the_editor_too(
    smtp, daily, settings
):
    settings.NEWSLETTER_BOUNCE_BREAKER_SAMPLE = 20
    SubscriberFactory.create_batch(30, newsletters=[daily])
    issue = start(IssueFactory(newsletter=daily))
    good = {d.subscriber.email for d in Delivery.objects.filter(issue=issue).order_by("id")[:20]}
    # The first twenty go through; then the relay breaks and refuses every mailbox.
    smtp.rcpt_reply = lambda address: None if address in good else UNKNOWN.format(address)

    send_until_done(issue)

    assert issue.status == Issue.Status.PAUSED
    assert nobody_suppressed()
    held = HeldBounce.objects.filter(issue=issue)
    assert held.count() == 10 and not held.filter(for_editor=False).exists()
    assert sorted(smtp.accepted) == sorted(good)


def test_an_esp_rejecting_every_address_pauses_and_suppresses_nobody(esp, daily):
    readers = SubscriberFactory.create_batch(30, newsletters=[daily])
    esp.statuses = {reader.email: "rejected" for reader in readers}
    issue = start(IssueFactory(newsletter=daily))

    send_until_done(issue)

    assert issue.status == Issue.Status.PAUSED and issue.auto_resume_at is None
    assert "30 of 30" in issue.pause_reason
    assert nobody_suppressed()
    assert HeldBounce.objects.filter(issue=issue, for_editor=True).count() == 30


@pytest.mark.parametrize("mode", ["batch", "one message per call"])
def test_an_esp_rejecting_everyone_trips_the_breaker_on_either_esp_path(esp, daily, settings, mode):
    if mode != "batch":
        settings.NEWSLETTER_ESP_MERGE_FIELD_FORMAT = "off"
    readers = SubscriberFactory.create_batch(12, newsletters=[daily])
    esp.statuses = {reader.email: "invalid" for reader in readers}
    issue = start(IssueFactory(newsletter=daily))

    send_until_done(issue)

    assert issue.status == Issue.Status.PAUSED
    assert nobody_suppressed()


# --- A few dead addresses among good ones ------------------------------------------


def test_a_few_dead_mailboxes_are_suppressed_and_the_send_finishes(smtp, daily):
    good = SubscriberFactory.create_batch(57, newsletters=[daily])
    dead = [SubscriberFactory(email=f"gone{n}@example.com", newsletters=[daily]) for n in range(3)]
    gone = {reader.email for reader in dead}
    smtp.rcpt_reply = lambda address: UNKNOWN.format(address) if address in gone else None
    issue = start(IssueFactory(newsletter=daily))

    send_until_done(issue)

    assert issue.status == Issue.Status.SENT
    assert Suppression.objects.count() == 3
    assert set(Subscriber.objects.exclude(status=Subscriber.Status.ACTIVE)) == set(dead)
    assert not HeldBounce.objects.exists()
    assert sorted(smtp.accepted) == sorted(reader.email for reader in good)


def test_a_long_send_suppresses_dead_addresses_window_by_window(smtp, daily, settings):
    settings.NEWSLETTER_BOUNCE_BREAKER_SAMPLE = 20
    SubscriberFactory.create_batch(70, newsletters=[daily])
    for n in range(4):
        SubscriberFactory(email=f"gone{n}@example.com", newsletters=[daily])
    smtp.rcpt_reply = lambda address: UNKNOWN.format(address) if "gone" in address else None
    issue = start(IssueFactory(newsletter=daily))

    send_until_done(issue)

    assert issue.status == Issue.Status.SENT
    assert Suppression.objects.count() == 4
    assert not HeldBounce.objects.exists()


def test_an_esp_rejecting_a_few_addresses_suppresses_them_and_finishes(esp, daily):
    readers = SubscriberFactory.create_batch(40, newsletters=[daily])
    esp.statuses = {readers[5].email: "rejected", readers[30].email: "invalid"}
    issue = start(IssueFactory(newsletter=daily))

    send_until_done(issue)

    assert issue.status == Issue.Status.SENT
    assert Suppression.objects.count() == 2
    assert not HeldBounce.objects.exists()


# --- The editor's word -------------------------------------------------------------


@pytest.fixture
def tripped(smtp, daily):
    readers = SubscriberFactory.create_batch(12, newsletters=[daily])
    smtp.rcpt_reply = lambda address: UNKNOWN.format(address)
    issue = send_until_done(start(IssueFactory(newsletter=daily)))
    assert issue.status == Issue.Status.PAUSED
    return issue, readers


def test_the_editor_confirms_the_held_bounces_and_they_are_suppressed(tripped):
    issue, readers = tripped

    assert issue_held_bounces_confirm(issue=issue) == 12
    assert issue_held_bounces_confirm(issue=issue) == 0  # twice is harmless

    assert Suppression.objects.count() == 12
    assert not HeldBounce.objects.exists()
    assert Delivery.objects.filter(issue=issue, status=Delivery.Status.FAILED).count() == 12


def test_the_editor_lifts_the_held_bounces_and_everyone_is_mailed_after_the_fix(tripped, smtp):
    issue, readers = tripped

    assert issue_held_bounces_lift(issue=issue) == 12
    smtp.rcpt_reply = None  # the relay is fixed
    issue_resume(issue=issue)
    issue = send_until_done(issue)

    assert issue.status == Issue.Status.SENT
    assert nobody_suppressed()
    assert sorted(smtp.accepted) == sorted(reader.email for reader in readers)
    assert set(Delivery.objects.filter(issue=issue).values_list("attempts", flat=True)) == {1}


def test_bounces_after_a_resume_are_judged_afresh_and_held_ones_still_wait(tripped, smtp, daily):
    issue, readers = tripped
    more = SubscriberFactory.create_batch(12, newsletters=[daily])
    Delivery.objects.bulk_create(Delivery(issue=issue, subscriber=reader) for reader in more)

    issue_resume(issue=issue)
    send_until_done(issue)  # the relay still refuses everyone

    issue.refresh_from_db()
    assert issue.status == Issue.Status.PAUSED and "12 of 12" in issue.pause_reason
    assert nobody_suppressed()
    assert HeldBounce.objects.filter(for_editor=True).count() == 24


def test_held_bounces_cannot_be_lifted_once_the_issue_is_over(tripped):
    issue, readers = tripped
    Issue.objects.filter(pk=issue.pk).update(status=Issue.Status.CANCELLED)
    issue.refresh_from_db()

    with pytest.raises(ValidationError):
        issue_held_bounces_lift(issue=issue)
    assert HeldBounce.objects.count() == 12


def test_the_admin_shows_why_and_the_editor_confirms_or_lifts(tripped, admin_client):
    issue, readers = tripped
    page = admin_client.get(f"/admin/newsletters/issue/{issue.pk}/change/").content.decode()

    assert "12 of 12" in page
    assert "/do/bounces-confirm/" in page and "/do/bounces-lift/" in page
    response = admin_client.post(f"/admin/newsletters/issue/{issue.pk}/do/bounces-lift/")
    assert response.status_code == 302
    assert not HeldBounce.objects.exists()
    assert Delivery.objects.filter(issue=issue, status=Delivery.Status.PENDING).count() == 12


def test_a_staff_member_without_change_permission_cannot_confirm_held_bounces(
    tripped, client, django_user_model
):
    from django.contrib.auth.models import Permission

    issue, readers = tripped
    viewer = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_issue"))
    client.force_login(viewer)

    response = client.post(f"/admin/newsletters/issue/{issue.pk}/do/bounces-confirm/")

    assert response.status_code == 403
    assert not Suppression.objects.exists()


# --- Concurrent lanes --------------------------------------------------------------


def _lanes_record(issue: Issue, *, lanes: int, size: int, bounce_every: int) -> None:
    """`lanes` workers at once, each recording its own claimed rows: every
    `bounce_every`-th a hard bounce, the rest accepted, with checks in between."""
    import threading

    from django.db import connection

    from outlet.newsletters.sending import OutcomeRecorder, deliveries_claim

    claims = [deliveries_claim(issue_id=issue.pk, size=size) for _ in range(lanes)]
    start_together = threading.Barrier(lanes)
    errors: list[BaseException] = []

    def lane(token, rows, started) -> None:
        try:
            start_together.wait()
            with OutcomeRecorder(token, lease_started=started, issue_id=issue.pk) as recorder:
                for number, delivery in enumerate(rows):
                    if number % bounce_every == 0:
                        recorder.bounces.hard_bounce(recorder, delivery, "550 5.1.1 unknown")
                    else:
                        recorder.sent(delivery)
                    if number % 7 == 0:
                        recorder.drain()
                        recorder.bounces.accepted(recorder.counts["sent"])
                recorder.finish()
        except BaseException as exc:  # noqa: BLE001 (reported by the test below)
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=lane, args=claim) for claim in claims]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors


@pytest.fixture
def postgres_only():
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL")


def test_concurrent_lanes_lose_no_count(postgres_only, daily, settings):
    settings.NEWSLETTER_BOUNCE_BREAKER_SAMPLE = 10_000  # no window is judged
    SubscriberFactory.create_batch(200, newsletters=[daily])
    issue = start(IssueFactory(newsletter=daily))

    _lanes_record(issue, lanes=4, size=50, bounce_every=10)

    issue.refresh_from_db()
    assert (issue.bounce_window_judged, issue.bounce_window_hard) == (200, 20)
    assert HeldBounce.objects.filter(issue=issue, for_editor=False).count() == 20


def test_concurrent_lanes_of_a_relay_refusing_everyone_suppress_nobody(
    postgres_only, daily, settings
):
    settings.NEWSLETTER_BOUNCE_BREAKER_SAMPLE = 30
    SubscriberFactory.create_batch(200, newsletters=[daily])
    issue = start(IssueFactory(newsletter=daily))

    _lanes_record(issue, lanes=4, size=50, bounce_every=1)

    issue.refresh_from_db()
    assert issue.status == Issue.Status.PAUSED and issue.bounce_breaker_tripped
    assert nobody_suppressed()
    assert HeldBounce.objects.filter(issue=issue, for_editor=True).count() == 200


def test_concurrent_lanes_with_a_few_dead_addresses_suppress_exactly_those(
    postgres_only, daily, settings
):
    settings.NEWSLETTER_BOUNCE_BREAKER_SAMPLE = 30
    SubscriberFactory.create_batch(200, newsletters=[daily])
    issue = start(IssueFactory(newsletter=daily))

    _lanes_record(issue, lanes=4, size=50, bounce_every=25)
    issue_sending_check(issue_id=issue.pk)

    issue.refresh_from_db()
    assert issue.status == Issue.Status.SENT
    assert Suppression.objects.count() == 8
    assert not HeldBounce.objects.exists()


# --- Review: what a held bounce suppresses, and held bounces a resume must not lose --


def test_a_held_bounce_suppresses_the_address_that_bounced_not_the_one_the_reader_moved_to(
    tripped,
):
    from outlet.core.addresses import email_digest
    from outlet.newsletters.services import subscriber_email_change

    issue, readers = tripped
    moved = readers[0]
    dead = moved.email
    # While the editor looks into the pause, the reader moves to a working mailbox.
    subscriber_email_change(subscriber=moved, email="new-home@example.org")

    issue_held_bounces_confirm(issue=issue)

    moved.refresh_from_db()
    assert moved.status == Subscriber.Status.ACTIVE
    assert not Suppression.objects.filter(email_hash=email_digest("new-home@example.org")).exists()
    assert Suppression.objects.filter(email_hash=email_digest(dead)).exists()
    assert Suppression.objects.count() == 12


def test_a_bounce_held_just_before_the_editor_resumes_still_reaches_the_editor(tripped, daily):
    from django.db.models import F

    from outlet.newsletters.sending.breaker import issue_bounces_judge

    issue, readers = tripped
    late = SubscriberFactory(newsletters=[daily])
    # A lane still finishing its batch holds one more hard bounce (row and count in one
    # transaction) ...
    delivery = Delivery.objects.create(
        issue=issue, subscriber=late, status=Delivery.Status.FAILED, attempts=1,
        error=UNKNOWN.format(late.email),
    )  # fmt: skip
    HeldBounce.objects.create(issue=issue, delivery=delivery)
    Issue.objects.filter(pk=issue.pk).update(
        bounce_window_judged=F("bounce_window_judged") + 1,
        bounce_window_hard=F("bounce_window_hard") + 1,
    )
    # ... the editor resumes before that lane's judgement, which comes after.
    issue_resume(issue=issue)
    issue_bounces_judge(issue_id=issue.pk)
    issue = send_until_done(issue)

    assert issue.status == Issue.Status.SENT
    held = HeldBounce.objects.filter(delivery=delivery).first()
    assert held is not None and held.for_editor  # neither lost nor suppressed unseen
    assert nobody_suppressed()


# --- Review: rules of the breaker no test held ---------------------------------------


def _lane_record(issue: Issue, *, bounces) -> None:
    """One lane records the outcome of every row it claims: a hard bounce where
    `bounces(address)`, accepted otherwise (deterministic, no server in between)."""
    from outlet.newsletters.sending import OutcomeRecorder, deliveries_claim

    token, rows, started = deliveries_claim(issue_id=issue.pk, size=1000)
    with OutcomeRecorder(token, lease_started=started, issue_id=issue.pk) as recorder:
        for delivery in rows:
            email = delivery.subscriber.email
            if bounces(email):
                recorder.bounces.hard_bounce(recorder, delivery, UNKNOWN.format(email))
            else:
                recorder.sent(delivery)
        recorder.finish()


def test_a_short_last_window_of_a_long_send_is_judged_against_a_full_window(smtp, daily, settings):
    """Five dead addresses among the last twenty of 120 are not a broken relay: a
    window of 100 allows ten."""
    settings.NEWSLETTER_BOUNCE_BREAKER_SAMPLE = 100
    SubscriberFactory.create_batch(115, newsletters=[daily])
    for n in range(5):
        SubscriberFactory(email=f"gone{n}@example.com", newsletters=[daily])
    smtp.rcpt_reply = lambda address: UNKNOWN.format(address) if "gone" in address else None
    issue = start(IssueFactory(newsletter=daily))

    send_until_done(issue)

    assert issue.status == Issue.Status.SENT
    assert Suppression.objects.count() == 5
    assert not HeldBounce.objects.exists()


def test_bounces_a_lane_records_after_the_trip_wait_for_the_editor(daily, settings):
    settings.NEWSLETTER_BOUNCE_BREAKER_RATE = 0.1
    settings.NEWSLETTER_BOUNCE_BREAKER_SAMPLE = 10
    SubscriberFactory.create_batch(30, newsletters=[daily])
    issue = start(IssueFactory(newsletter=daily))

    _lane_record(issue, bounces=lambda address: True)  # trips at the tenth, twenty follow

    issue.refresh_from_db()
    assert issue.status == Issue.Status.PAUSED
    assert HeldBounce.objects.filter(issue=issue, for_editor=True).count() == 30
    assert nobody_suppressed()


def test_a_bounce_recorded_after_a_cancel_is_judged_not_held_for_ever(daily, settings):
    from outlet.newsletters.issues import issue_cancel
    from outlet.newsletters.sending import OutcomeRecorder, deliveries_claim

    settings.NEWSLETTER_BOUNCE_BREAKER_RATE = 0.1
    SubscriberFactory.create_batch(19, newsletters=[daily])
    SubscriberFactory(email="gone@example.com", newsletters=[daily])
    issue = start(IssueFactory(newsletter=daily))
    token, rows, started = deliveries_claim(issue_id=issue.pk, size=1000)

    issue_cancel(issue=issue)  # while a lane still holds its batch
    with OutcomeRecorder(token, lease_started=started, issue_id=issue.pk) as recorder:
        for delivery in rows:
            email = delivery.subscriber.email
            if email == "gone@example.com":
                recorder.bounces.hard_bounce(recorder, delivery, UNKNOWN.format(email))
            else:
                recorder.sent(delivery)
        recorder.finish()

    assert Suppression.objects.count() == 1
    assert not HeldBounce.objects.exists()


def test_a_trip_during_an_outage_pause_is_not_resumed_by_beat(smtp, daily, settings):
    from datetime import timedelta

    from django.utils import timezone

    from outlet.newsletters.issues import issue_pause, issues_tick
    from outlet.newsletters.sending import OutcomeRecorder, deliveries_claim

    settings.NEWSLETTER_BOUNCE_BREAKER_SAMPLE = 10
    SubscriberFactory.create_batch(20, newsletters=[daily])
    issue = start(IssueFactory(newsletter=daily))
    token, rows, started = deliveries_claim(issue_id=issue.pk, size=1000)
    # Another lane found the server down: the engine's own pause, resumed by beat.
    issue_pause(issue=issue, reason="The mail server is down.", retry_after=60)
    with OutcomeRecorder(token, lease_started=started, issue_id=issue.pk) as recorder:
        for delivery in rows:  # this lane's batch was refused mailbox by mailbox
            recorder.bounces.hard_bounce(recorder, delivery, UNKNOWN.format("x"))
        recorder.finish()

    issues_tick(now=timezone.now() + timedelta(hours=1))

    issue.refresh_from_db()
    assert issue.status == Issue.Status.PAUSED and issue.bounce_breaker_tripped
    assert issue.auto_resume_at is None
    assert "bounce breaker" in issue.pause_reason


def test_a_relay_breaking_mid_batch_gets_nobody_suppressed_by_the_window_before(daily, settings):
    """A batch is larger than a window (500 and 200 by default): the relay accepts the
    first thirty of it, then refuses every mailbox. The thirty accepted messages close
    their own window; the first refusal is not judged among them (1 in 31) and suppressed."""
    settings.NEWSLETTER_BOUNCE_BREAKER_RATE = 0.1
    settings.NEWSLETTER_BOUNCE_BREAKER_SAMPLE = 20
    SubscriberFactory.create_batch(30, newsletters=[daily])
    for n in range(30):
        SubscriberFactory(email=f"gone{n}@example.com", newsletters=[daily])
    issue = start(IssueFactory(newsletter=daily))

    _lane_record(issue, bounces=lambda address: "gone" in address)

    issue.refresh_from_db()
    assert issue.status == Issue.Status.PAUSED and issue.bounce_breaker_tripped
    assert nobody_suppressed()
    assert HeldBounce.objects.filter(issue=issue, for_editor=True).count() == 30


def test_a_relay_refusing_everyone_leaves_no_readers_address_on_other_rows(smtp, daily):
    """Five refusals in a row pause the issue, and the rows handed back carry why: the
    server's reply, which quotes the last refused address. Erasing that reader must
    leave the address nowhere."""
    from outlet.readers.services import address_erase
    from tests.readers.test_erasure_columns import columns_holding

    SubscriberFactory.create_batch(8, newsletters=[daily])
    smtp.rcpt_reply = lambda address: f"554 5.7.1 <{address}>: Relay access denied"
    issue = start(IssueFactory(newsletter=daily))
    issue_batch_send_task(issue.pk)  # five refusals in a row: paused for the editor
    issue.refresh_from_db()
    assert issue.status == Issue.Status.PAUSED
    assert "Relay access denied" in issue.pause_reason

    for email in list(Subscriber.objects.values_list("email", flat=True)):
        address_erase(email=email)
        assert columns_holding(email) == []
