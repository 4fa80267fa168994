"""Celery entry points for the audience: thin, by id, safe to run twice."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings
from django.core.cache import cache

from outlet.core.tasks import MAIL_TASK_OPTIONS, TEMPORARY_MAIL_ERRORS
from outlet.newsletters.models import Subscriber, SubscriberImport

TASK_OPTIONS: dict[str, Any] = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "ignore_result": True,
}


@shared_task(
    name="newsletters.subscriber_confirmation_send",
    **MAIL_TASK_OPTIONS | {"max_retries": 8},
)
def subscriber_confirmation_send_task(subscriber_id: int, requested_at: str) -> None:
    """Mail the confirmation requested at `requested_at`, once.

    The (subscriber, request time) pair is claimed in the cache before sending,
    so a redelivered task does not mail the same request twice; a send that
    fails gives the claim back before Celery tries again, so none is lost.
    """
    from outlet.newsletters.emails import confirmation_email
    from outlet.newsletters.services import email_is_suppressed

    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is None or email_is_suppressed(subscriber.email):
        return
    claim = f"newsletters:confirm-mailed:{subscriber_id}:{requested_at}"
    if not cache.add(claim, 1, 86400):
        return
    try:
        confirmation_email(subscriber).send()
    except TEMPORARY_MAIL_ERRORS:
        cache.delete(claim)
        raise


@shared_task(name="newsletters.subscriber_preferences_link_send", **MAIL_TASK_OPTIONS)
def subscriber_preferences_link_send_task(subscriber_id: int) -> None:
    from outlet.newsletters.emails import preferences_link_email
    from outlet.newsletters.services import email_is_suppressed

    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is not None and not email_is_suppressed(subscriber.email):
        preferences_link_email(subscriber).send()


@shared_task(name="newsletters.subscriber_import_run", queue="default", **TASK_OPTIONS)
def subscriber_import_run_task(import_id: int) -> None:
    """Run (or resume) a CSV import; finished imports are left alone."""
    from outlet.newsletters.audience.importing import subscriber_import_run

    job = SubscriberImport.objects.filter(pk=import_id).first()
    if job is not None:
        subscriber_import_run(job=job)


# --- Sending issues (the fan-out engine lives in the sending package) ----------------


@shared_task(name="newsletters.subscriber_imports_expire", queue="default", **TASK_OPTIONS)
def subscriber_imports_expire_task() -> int:
    """Beat, daily: forget the rows of imports finished past the retention period."""
    from outlet.newsletters.audience.retention import subscriber_imports_expire

    return subscriber_imports_expire()


@shared_task(name="newsletters.issue_plan", queue="bulk", **TASK_OPTIONS)
def issue_plan_task(issue_id: int) -> None:
    """Create the issue's deliveries and start its lanes. Repeating it adds no row."""
    from outlet.newsletters.issues import issue_plan
    from outlet.newsletters.models import Issue

    issue = Issue.objects.select_related("newsletter").filter(pk=issue_id).first()
    if issue is not None and issue.status == Issue.Status.SENDING:
        issue_plan(issue=issue)


@shared_task(name="newsletters.issue_batch_send", queue="bulk", **TASK_OPTIONS)
def issue_batch_send_task(issue_id: int, lane: int = 0, generation: int | None = None) -> None:
    """Send one batch, then queue this lane again while the issue has work.

    A lane that finds nothing to claim but rows still leased elsewhere (or
    backing off) comes back when the earliest of them is due, so a dead
    worker's rows are taken over after their lease without waiting for beat.
    Running twice is harmless: each run claims rows of its own or none. A lane
    of an older `generation` than the issue's stops (see issues._lanes_start).
    """
    from outlet.newsletters.issues import issue_pause, issue_sending_check
    from outlet.newsletters.models import Issue
    from outlet.newsletters.sending import (
        LEASE_LOST,
        MailServerDown,
        batch_send,
        next_wake_seconds,
    )

    if (
        generation is not None
        and not Issue.objects.filter(pk=issue_id, lane_generation=generation).exists()
    ):
        return  # newer lanes have taken over
    try:
        result = batch_send(issue_id=issue_id)
    except MailServerDown as exc:
        issue = Issue.objects.filter(pk=issue_id, status=Issue.Status.SENDING).first()
        if issue is not None:
            import contextlib

            from django.core.exceptions import ValidationError

            with contextlib.suppress(ValidationError):  # another lane paused it first
                issue_pause(
                    issue=issue,
                    reason=f"{exc}. Sending resumes by itself when the server answers."
                    if exc.auto_resume
                    else f"{exc}.",
                    retry_after=settings.NEWSLETTER_SMTP_DOWN_RETRY_SECONDS
                    if exc.auto_resume
                    else None,
                )
        return
    if result.stopped and result.stopped != LEASE_LOST:
        return  # paused, cancelled or finished: resume and the tick start new lanes
    if result.claimed:  # (a lost lease included: this lane claims afresh)
        issue_batch_send_task.delay(issue_id, lane, generation)
        return
    if issue_sending_check(issue_id=issue_id):
        return
    wake = next_wake_seconds(issue_id=issue_id)
    if wake is not None:
        issue_batch_send_task.apply_async(
            (issue_id, lane, generation), countdown=min(30.0, wake + 0.5)
        )


@shared_task(name="newsletters.issue_test_send", **MAIL_TASK_OPTIONS)
def issue_test_send_task(issue_id: int, addresses: list[str], request_id: str = "") -> None:
    """Mail one editor's test request once, even if the task is delivered twice; a send
    that fails gives the request's claim back before Celery tries again."""
    from outlet.newsletters.issues import issue_test_message
    from outlet.newsletters.models import Issue

    claim = f"newsletters:test-send:{request_id}"
    if request_id and not cache.add(claim, 1, 86400):
        return
    issue = Issue.objects.select_related("newsletter").filter(pk=issue_id).first()
    if issue is None:
        return
    try:
        issue_test_message(issue=issue, to=addresses).send()
    except TEMPORARY_MAIL_ERRORS:
        if request_id:
            cache.delete(claim)
        raise


@shared_task(name="newsletters.issues_tick", queue="default", **TASK_OPTIONS)
def issues_tick_task() -> None:
    """Beat: start scheduled issues, revive stalled sends, resume after a mail outage."""
    from outlet.newsletters.issues import issues_tick

    issues_tick()


@shared_task(name="newsletters.tracking_flush", queue="default", **TASK_OPTIONS)
def tracking_flush_task() -> int:
    """Beat: write buffered clicks and opens, refresh the counters they and events touched.
    Returns how many lines were written: a flush of none is logged at DEBUG only
    (`core.log_filters.IdleTaskFilter`), as it runs every few seconds."""
    from outlet.newsletters.measuring import recording

    written = recording.tracking_flush()
    recording.issues_stats_refresh_marked()
    return written


@shared_task(name="newsletters.subscriber_counts_refresh", queue="default", **TASK_OPTIONS)
def subscriber_counts_refresh_task() -> None:
    """Beat: recount subscribers per newsletter for the admin (read from the cache on
    large lists, so no editor's visit pays for the count)."""
    from outlet.newsletters.selectors import newsletter_subscriber_counts_refresh

    newsletter_subscriber_counts_refresh()


@shared_task(name="newsletters.bounce_mailboxes_poll", queue="default", **TASK_OPTIONS)
def bounce_mailboxes_poll_task() -> dict[str, int]:
    """Beat: take in what came back to BOUNCE_MAILDIR / BOUNCE_IMAP_URL (bounces/mailbox.py).
    Safe to run twice, or twice at once: each message acts once (bounces/intake.py)."""
    from outlet.newsletters.bounces.mailbox import bounce_mailboxes_poll

    return dict(bounce_mailboxes_poll())
