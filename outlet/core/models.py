from django.db import models


class Heartbeat(models.Model):
    """The last sign of life from a background process (a worker, or beat)."""

    class Component(models.TextChoices):
        WORKER = "worker", "Celery worker"
        BEAT = "beat", "Celery beat"

    component = models.CharField(max_length=20, choices=Component.choices)
    name = models.CharField(max_length=200, help_text="Worker hostname, e.g. celery@web1.")
    last_seen = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["component", "name"], name="heartbeat_unique_process"),
        ]

    def __str__(self) -> str:
        return f"{self.get_component_display()} {self.name}"
