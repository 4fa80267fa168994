"""Celery tasks for donations: thin, by id, safe to run twice."""

from __future__ import annotations

from celery import shared_task

from outlet.core.tasks import TEMPORARY_MAIL_ERRORS, retry_countdown

from . import selectors, services


@shared_task(
    bind=True,
    name="donations.donor_email_send",
    queue="mail",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=8,
    ignore_result=True,
)
def donor_email_send_task(self, donor_email_id: int) -> None:
    """Send one owed email (receipt, link, notice). A repeat finds it sent and stops."""
    try:
        services.donor_email_send(donor_email_id=donor_email_id)
    except TEMPORARY_MAIL_ERRORS as exc:
        final = self.request.retries >= self.max_retries
        services.donor_email_failure_record(
            donor_email_id=donor_email_id, error=str(exc), final=final
        )
        if final:
            return
        raise self.retry(exc=exc, countdown=retry_countdown(self.request.retries)) from exc


@shared_task(
    bind=True,
    name="donations.dispute_editors_notify",
    queue="mail",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=8,
    ignore_result=True,
)
def dispute_editors_notify_task(self, donation_id: int) -> None:
    """Tell the editors a donation is disputed. A repeat finds them told and stops."""
    try:
        services.dispute_editors_notify(donation_id=donation_id)
    except TEMPORARY_MAIL_ERRORS as exc:
        if self.request.retries >= self.max_retries:
            raise
        raise self.retry(exc=exc, countdown=retry_countdown(self.request.retries)) from exc


@shared_task(
    name="donations.donor_emails_sweep",
    queue="default",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def donor_emails_sweep_task() -> None:
    """Beat: queue donor emails (receipts first among them) that were owed but never tried,
    and the editors' alerts of disputes never told."""
    services.donor_emails_sweep()
    services.dispute_notifications_sweep()


@shared_task(name="donations.overview_refresh", queue="default", ignore_result=True)
def donation_overview_refresh_task() -> None:
    """Beat: recompute the donations list's totals and chart (read from the cache on
    large tables, so no editor's visit pays for a scan of every donation)."""
    selectors.donation_overview_refresh()
