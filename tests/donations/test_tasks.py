"""The email task: thin, idempotent, and run by a real worker on the "mail" queue."""

from __future__ import annotations

import smtplib
import time

import pytest
from django.core import mail
from django.utils import timezone

from outlet.core.tasks import MAIL_TASK_OPTIONS
from outlet.donations import services
from outlet.donations.models import Donation, DonorEmail
from outlet.donations.tasks import dispute_editors_notify_task, donor_email_send_task
from tests.factories import DonationFactory, GiftFactory

pytestmark = pytest.mark.django_db


def test_receipt_task_run_twice_sends_once(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    donation = DonationFactory(status="paid", paid_at=timezone.now(), amount=2500, fee_amount=106)
    email = DonorEmail.objects.create(
        kind="receipt", donor=donation.donor, donation=donation, dedupe_key="r"
    )

    donor_email_send_task.apply(args=[email.pk])
    donor_email_send_task.apply(args=[email.pk])

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [donation.donor.email]
    assert "$25.00" in message.body and "ending 4242" in message.body
    assert "No goods or services" in message.body
    assert "/account/" in message.body
    html = message.alternatives[0][0]
    assert "$25.00" in html
    email.refresh_from_db()
    assert email.status == "sent"


@pytest.mark.parametrize(
    "kind",
    ["past_due", "gift_ended", "gift_cancelled", "amount_changed", "card_updated"],
)
def test_every_notice_renders_text_and_html(settings, kind):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    gift = GiftFactory()
    email = DonorEmail.objects.create(kind=kind, donor=gift.donor, gift=gift)
    donor_email_send_task.apply(args=[email.pk])
    assert len(mail.outbox) == 1
    assert mail.outbox[0].body.strip() and mail.outbox[0].alternatives


def test_temporary_mail_failure_is_retried_then_recorded_as_failed(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # nothing listens there
    donation = DonationFactory(status="paid", paid_at=timezone.now())
    email = DonorEmail.objects.create(kind="receipt", donor=donation.donor, donation=donation)

    # Run eagerly, the retries happen inline, with backoff countdowns ignored.
    donor_email_send_task.apply(args=[email.pk])

    email.refresh_from_db()
    assert email.attempts == donor_email_send_task.max_retries + 1
    assert email.status == "failed" and "refused" in email.last_error.lower()


def test_retries_never_wait_longer_than_the_broker_keeps_a_task(settings, monkeypatch):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # nothing listens there
    donation = DonationFactory(status="paid", paid_at=timezone.now())
    email = DonorEmail.objects.create(kind="receipt", donor=donation.donor, donation=donation)
    countdowns = []
    retry = donor_email_send_task.retry

    def spy(*args, **kwargs):
        countdowns.append(kwargs["countdown"])
        return retry(*args, **kwargs)

    monkeypatch.setattr(donor_email_send_task, "retry", spy)
    donor_email_send_task.apply(args=[email.pk])

    assert len(countdowns) == donor_email_send_task.max_retries
    assert countdowns == sorted(countdowns)  # backing off
    # A countdown is spent unacknowledged in a worker; past the visibility timeout the
    # Redis broker would hand the same task to a second worker meanwhile.
    assert max(countdowns) <= settings.TASK_RETRY_MAX_SECONDS < settings.CELERY_VISIBILITY_TIMEOUT


@pytest.mark.parametrize("task", [donor_email_send_task, dispute_editors_notify_task])
def test_mail_tasks_are_retried_by_celery_itself_with_the_mail_backoff(task):
    # Celery's autoretry (as the readers' tasks), eight retries as before.
    assert task.autoretry_for == MAIL_TASK_OPTIONS["autoretry_for"]
    assert task.retry_backoff == MAIL_TASK_OPTIONS["retry_backoff"]
    assert task.retry_backoff_max == MAIL_TASK_OPTIONS["retry_backoff_max"]
    assert task.queue == "mail" and task.acks_late and task.max_retries == 8


def test_a_donor_email_is_tried_again_on_a_temporary_mail_fault(mail_server_down):
    donation = DonationFactory(status="paid", paid_at=timezone.now())
    email = DonorEmail.objects.create(kind="receipt", donor=donation.donor, donation=donation)

    result = donor_email_send_task.apply(args=[email.pk])

    assert mail_server_down.tries == 1 + 8  # the first try and eight retries
    # Once they are used up the row says so, and the task ends there (no error).
    assert result.successful()
    email.refresh_from_db()
    assert email.status == "failed" and email.attempts == 9
    assert "unexpectedly closed" in email.last_error


def test_a_donor_email_sent_on_a_retry_is_recorded_sent(mail_server_down, monkeypatch):
    donation = DonationFactory(status="paid", paid_at=timezone.now())
    email = DonorEmail.objects.create(kind="receipt", donor=donation.donor, donation=donation)
    send = services.donor_email_send

    def down_once(**kwargs):
        if mail_server_down.tries == 1:
            mail_server_down.up()
        return send(**kwargs)

    monkeypatch.setattr(services, "donor_email_send", down_once)
    result = donor_email_send_task.apply(args=[email.pk])

    assert result.successful()
    assert len(mail.outbox) == 1
    email.refresh_from_db()
    assert email.status == "sent" and email.attempts == 2  # the fault, then the send


def test_a_dispute_alert_is_tried_again_on_a_temporary_mail_fault(
    mail_server_down, django_user_model
):
    django_user_model.objects.create_superuser("boss", "boss@example.test", "pw")
    donation = DonationFactory(
        status=Donation.Status.PAID, stripe_charge_id="ch_d", disputed_at=timezone.now()
    )

    result = dispute_editors_notify_task.apply(args=[donation.pk])

    assert mail_server_down.tries == 1 + 8
    # Used up, the fault is the task's failure, and the dispute stays untold for the sweep.
    assert isinstance(result.result, smtplib.SMTPServerDisconnected)
    donation.refresh_from_db()
    assert donation.dispute_notified_at is None


@pytest.mark.worker
def test_real_worker_sends_each_receipt_once(smtp_sink, transactional_db):
    from tests.conftest import WorkerProcess

    worker = WorkerProcess(queues="mail", extra_env={"EMAIL_URL": smtp_sink.url})
    try:
        worker.wait_ready()
        donation = DonationFactory(amount=2500)
        services.payment_record(donation_id=donation.pk, charge_id="ch_1")
        services.payment_record(donation_id=donation.pk, charge_id="ch_1")
        email = DonorEmail.objects.get()
        donor_email_send_task.delay(email.pk)  # a duplicate delivery of the task
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not smtp_sink.to(donation.donor.email):
            time.sleep(0.2)
        time.sleep(1.5)
        assert len(smtp_sink.to(donation.donor.email)) == 1
        assert "receipt" in smtp_sink.to(donation.donor.email)[0]["Subject"].lower()
    finally:
        worker.stop()
