"""Celery entry points for the audience: thin, by id, safe to run twice."""

from __future__ import annotations

from celery import shared_task
from django.core.cache import cache

from outlet.newsletters.models import Subscriber, SubscriberImport

TASK_OPTIONS = {"acks_late": True, "reject_on_worker_lost": True, "ignore_result": True}


@shared_task(name="newsletters.subscriber_confirmation_send", queue="mail", **TASK_OPTIONS)
def subscriber_confirmation_send_task(subscriber_id: int, requested_at: str) -> None:
    """Mail the confirmation requested at `requested_at`, once.

    The (subscriber, request time) pair is claimed in the cache before
    sending, so a redelivered task does not mail the same request twice.
    """
    from outlet.newsletters.emails import confirmation_email

    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is None or subscriber.status in (
        Subscriber.Status.BOUNCED,
        Subscriber.Status.COMPLAINED,
    ):
        return
    if not cache.add(f"newsletters:confirm-mailed:{subscriber_id}:{requested_at}", 1, 86400):
        return
    confirmation_email(subscriber).send()


@shared_task(name="newsletters.subscriber_preferences_link_send", queue="mail", **TASK_OPTIONS)
def subscriber_preferences_link_send_task(subscriber_id: int) -> None:
    from outlet.newsletters.emails import preferences_link_email

    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is not None:
        preferences_link_email(subscriber).send()


@shared_task(name="newsletters.subscriber_import_run", queue="default", **TASK_OPTIONS)
def subscriber_import_run_task(import_id: int) -> None:
    """Run (or resume) a CSV import; finished imports are left alone."""
    from outlet.newsletters.services import subscriber_import_run

    job = SubscriberImport.objects.filter(pk=import_id).first()
    if job is not None:
        subscriber_import_run(job=job)
