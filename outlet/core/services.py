from django.utils import timezone

from .models import Heartbeat


def heartbeat_record(*, component: str, name: str) -> None:
    """Note that a background process is alive now (one row per process, updated in place)."""
    Heartbeat.objects.update_or_create(
        component=component, name=name, defaults={"last_seen": timezone.now()}
    )
