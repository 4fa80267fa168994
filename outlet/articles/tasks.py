"""Publishing's Celery tasks: purges of the shared cache in front of the site."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from outlet.core.purgers import PurgeError, purger

logger = logging.getLogger(__name__)


#: Seconds between tries of a purge: 1, 2, 4 … then every minute.
PURGE_RETRY_CAP_SECONDS = 60


def _purge_tries_left(retries: int) -> bool:
    """Keep trying until the pages would have expired anyway (EDGE_CACHE_SECONDS)."""
    waited = sum(min(2**n, PURGE_RETRY_CAP_SECONDS) for n in range(retries))
    return waited <= settings.EDGE_CACHE_SECONDS + PURGE_RETRY_CAP_SECONDS


@shared_task(
    bind=True,
    name="articles.edge_purge",  # on the `purge` queue (settings.CELERY_TASK_ROUTES)
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    max_retries=None,
)
def edge_purge_task(self, keys: list[str]) -> None:
    """Purge these surrogate keys; safe to run twice (a purge of nothing is a no-op).

    Queued after commit by services.content_changed. A cache that cannot be reached
    is retried, with backoff, for as long as it could still be serving the old pages
    (EDGE_CACHE_SECONDS); past that they have expired there, and the failure is logged.
    """
    configured = purger()
    if configured is None:
        return
    try:
        configured.purge(keys)
    except PurgeError as exc:
        retries = self.request.retries
        if not _purge_tries_left(retries + 1):
            logger.error("purge of %d keys failed for good after %d tries: %s",
                         len(keys), retries + 1, exc)  # fmt: skip
            return
        logger.warning(
            "purge of %d keys failed (try %d), retrying: %s", len(keys), retries + 1, exc
        )
        raise self.retry(exc=exc, countdown=min(2**retries, PURGE_RETRY_CAP_SECONDS)) from exc


@shared_task(name="articles.scheduled_go_live", queue="default", acks_late=True, ignore_result=True)
def scheduled_go_live_task() -> None:
    """Queued by beat: purge the pages of scheduled articles whose time has come."""
    from .services import articles_gone_live_purge

    if settings.EDGE_PURGER:
        articles_gone_live_purge()
