from celery import shared_task

from .models import Heartbeat
from .services import heartbeat_record


@shared_task(name="core.beat_heartbeat", queue="default", ignore_result=True)
def beat_heartbeat_task() -> None:
    """Queued by beat on a schedule: proves beat is scheduling and a worker is consuming."""
    heartbeat_record(component=Heartbeat.Component.BEAT, name="beat")
