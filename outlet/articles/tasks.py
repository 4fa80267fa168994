"""Publishing's Celery tasks: purges of the shared cache in front of the site."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from outlet.core.purgers import PurgeError, purger


@shared_task(
    bind=True,
    name="articles.edge_purge",
    queue="default",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    max_retries=10,
)
def edge_purge_task(self, keys: list[str]) -> None:
    """Purge these surrogate keys; safe to run twice (a purge of nothing is a no-op).

    Queued after commit by services.content_changed. A cache that cannot be reached
    is retried with backoff; meanwhile it serves what it holds until EDGE_CACHE_SECONDS.
    """
    configured = purger()
    if configured is None:
        return
    try:
        configured.purge(keys)
    except PurgeError as exc:
        raise self.retry(exc=exc, countdown=min(2**self.request.retries, 60)) from exc


@shared_task(name="articles.scheduled_go_live", queue="default", acks_late=True, ignore_result=True)
def scheduled_go_live_task() -> None:
    """Queued by beat: purge the pages of scheduled articles whose time has come."""
    from .services import articles_gone_live_purge

    if settings.EDGE_PURGER:
        articles_gone_live_purge()
