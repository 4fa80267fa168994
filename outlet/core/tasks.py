import smtplib

from celery import shared_task
from django.conf import settings

from .models import Heartbeat
from .services import heartbeat_record

#: Mail errors worth trying again later: SMTP refusals, dropped connections, timeouts.
TEMPORARY_MAIL_ERRORS = (smtplib.SMTPException, OSError)


def retry_countdown(retries: int) -> int:
    """Exponential backoff from 30 s, kept under the broker's visibility timeout."""
    return min(30 * 2**retries, settings.TASK_RETRY_MAX_SECONDS)


@shared_task(name="core.beat_heartbeat", queue="default", ignore_result=True)
def beat_heartbeat_task() -> None:
    """Queued by beat on a schedule: proves beat is scheduling and a worker is consuming."""
    heartbeat_record(component=Heartbeat.Component.BEAT, name="beat")
