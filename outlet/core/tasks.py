import smtplib
from typing import Any

from celery import shared_task
from django.conf import settings

from .models import Heartbeat
from .services import heartbeat_record

#: Mail errors worth trying again later: SMTP refusals, dropped connections, timeouts.
TEMPORARY_MAIL_ERRORS = (smtplib.SMTPException, OSError)


#: A task that sends one email: on the short `mail` queue, acknowledged late, and tried
#: again on a temporary mail fault by Celery itself (autoretry), waiting 30 s doubling,
#: kept under the broker's visibility timeout (a countdown past it would see the task
#: handed to a second worker meanwhile). Override `max_retries` with `|` where needed.
MAIL_TASK_OPTIONS: dict[str, Any] = {
    "queue": "mail",
    "acks_late": True,
    "reject_on_worker_lost": True,
    "ignore_result": True,
    "autoretry_for": TEMPORARY_MAIL_ERRORS,
    "max_retries": 5,
    "retry_backoff": 30,
    "retry_backoff_max": settings.TASK_RETRY_MAX_SECONDS,
    "retry_jitter": False,
}


@shared_task(name="core.beat_heartbeat", queue="default", ignore_result=True)
def beat_heartbeat_task() -> None:
    """Queued by beat on a schedule: proves beat is scheduling and a worker is consuming."""
    heartbeat_record(component=Heartbeat.Component.BEAT, name="beat")
