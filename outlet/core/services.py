from collections.abc import Iterable

from django.db.models import Model
from django.utils import timezone
from django.utils.text import capfirst

from .models import Heartbeat


def heartbeat_record(*, component: str, name: str) -> None:
    """Note that a background process is alive now (one row per process, updated in place)."""
    Heartbeat.objects.update_or_create(
        component=component, name=name, defaults={"last_seen": timezone.now()}
    )


def admin_log_anonymise(*, model: type[Model], object_ids: Iterable[object]) -> int:
    """The admin's history keeps `object_repr`, the object's str() when staff acted on it,
    which for some rows (a reader, a donor) is an email address. When those rows are
    erased, the history of what staff did stays, but names the object only by its kind
    and id. Returns how many entries were rewritten."""
    from django.contrib.admin.models import LogEntry
    from django.contrib.contenttypes.models import ContentType

    content_type = ContentType.objects.get_for_model(model, for_concrete_model=False)
    label = capfirst(str(model._meta.verbose_name))
    return sum(
        LogEntry.objects.filter(content_type=content_type, object_id=str(object_id)).update(
            object_repr=f"{label} #{object_id} (erased)"
        )
        for object_id in object_ids
    )
