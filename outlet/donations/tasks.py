"""Celery tasks for donations: thin, by id, safe to run twice."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from outlet.core.tasks import MAIL_TASK_OPTIONS, TEMPORARY_MAIL_ERRORS

from . import selectors, services, stripe_gateway

#: A donor's email and the editors' dispute alert get eight retries before they are given
#: up, not the mail tasks' usual five.
DONOR_MAIL_TASK_OPTIONS = MAIL_TASK_OPTIONS | {"max_retries": 8}


@shared_task(bind=True, name="donations.donor_email_send", **DONOR_MAIL_TASK_OPTIONS)
def donor_email_send_task(self, donor_email_id: int) -> None:
    """Send one owed email (receipt, link, notice). A repeat finds it sent and stops.

    Each temporary mail fault is recorded on the row before Celery tries again; the last
    one marks the row failed and ends the task there, so the admin shows what was lost."""
    try:
        services.donor_email_send(donor_email_id=donor_email_id)
    except TEMPORARY_MAIL_ERRORS as exc:
        final = self.request.retries >= self.max_retries
        services.donor_email_failure_record(
            donor_email_id=donor_email_id, error=str(exc), final=final
        )
        if not final:
            raise  # Celery's autoretry queues the next try


@shared_task(
    name="donations.donor_stripe_customers_sync",
    queue="default",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    autoretry_for=stripe_gateway.TEMPORARY_ERRORS,
    max_retries=8,
    retry_backoff=30,
    retry_backoff_max=settings.TASK_RETRY_MAX_SECONDS,
    retry_jitter=False,
)
def donor_stripe_customers_sync_task(donor_id: int) -> None:
    """The donor's Stripe customers take their current email and name (cleared once
    erased). Reads the donor afresh, so a repeat sends the same and changes nothing;
    a temporary Stripe fault is tried again with backoff, a refusal is not."""
    services.donor_stripe_customers_sync(donor_id=donor_id)


@shared_task(name="donations.dispute_editors_notify", **DONOR_MAIL_TASK_OPTIONS)
def dispute_editors_notify_task(donation_id: int) -> None:
    """Tell the editors a donation is disputed. A repeat finds them told and stops; one
    whose retries ran out stays untold, for the sweep to queue again."""
    services.dispute_editors_notify(donation_id=donation_id)


@shared_task(name="donations.refund_failed_editors_notify", **DONOR_MAIL_TASK_OPTIONS)
def refund_failed_editors_notify_task(refund_id: int) -> None:
    """Tell the editors a refund failed. A repeat finds them told and stops."""
    services.refund_failed_editors_notify(refund_id=refund_id)


@shared_task(
    name="donations.donor_emails_sweep",
    queue="default",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def donor_emails_sweep_task() -> None:
    """Beat: queue donor emails (receipts first among them) that were owed but never tried,
    and the editors' alerts of disputes and failed refunds never told."""
    services.donor_emails_sweep()
    services.dispute_notifications_sweep()


@shared_task(name="donations.overview_refresh", queue="default", ignore_result=True)
def donation_overview_refresh_task() -> None:
    """Beat: recompute the donations list's totals and chart (read from the cache on
    large tables, so no editor's visit pays for a scan of every donation)."""
    selectors.donation_overview_refresh()


@shared_task(
    name="donations.checkouts_abandoned_expire",
    queue="default",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def checkouts_abandoned_expire_task() -> None:
    """Beat: checkouts left before Stripe's charge step become abandoned (safe to repeat)."""
    services.checkouts_abandoned_expire()
