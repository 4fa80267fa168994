"""
The Celery app. Tasks are thin: they take ids, load fresh state and call a service.

Queues: "default" for housekeeping, "mail" for one-off messages (receipts,
confirmations), "bulk" for newsletter fan-out, "purge" for the shared cache's purges
(routed in settings' CELERY_TASK_ROUTES). Workers for "mail" never sit behind a
newsletter, whatever its size, nor behind purges retried through a Varnish outage.
"""

import os

from celery import Celery, bootsteps
from kombu import Queue

from outlet.core.logs.context import celery_log_context_connect
from outlet.core.metrics.celery_signals import celery_metrics_connect

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outlet.settings")

app = Celery("outlet")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Each queue its own routing key: with one shared key, a direct exchange would copy
# every message into all the queues.
QUEUES = ("default", "mail", "bulk", "purge")
app.conf.task_queues = [Queue(name, routing_key=name) for name in QUEUES]
app.autodiscover_tasks()
celery_metrics_connect()
celery_log_context_connect()


class HeartbeatStep(bootsteps.StartStopStep):
    """Every worker records that it is alive, read by /healthz.

    A bootstep on the worker's own timer rather than a beat task, so a dead
    beat does not make a live worker look dead (beat has its own heartbeat).
    """

    requires = ("celery.worker.components:Timer",)

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.timer_ref = None

    def start(self, worker):
        from django.conf import settings

        from outlet.core.services import heartbeat_record

        def beat():
            heartbeat_record(component="worker", name=worker.hostname)

        beat()
        self.timer_ref = worker.timer.call_repeatedly(
            settings.OUTLET_WORKER_HEARTBEAT_SECONDS, beat, priority=10
        )

    def stop(self, worker):
        if self.timer_ref is not None:
            self.timer_ref.cancel()


app.steps["worker"].add(HeartbeatStep)
