from collections.abc import Iterable

from django.db.models import Model, Value
from django.db.models.functions import Concat
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

    ids = [str(object_id) for object_id in object_ids]
    if not ids:
        return 0
    content_type = ContentType.objects.get_for_model(model, for_concrete_model=False)
    entries = LogEntry.objects.filter(content_type=content_type, object_id__in=ids)
    label = capfirst(str(model._meta.verbose_name))
    return entries.update(object_repr=Concat(Value(f"{label} #"), "object_id", Value(" (erased)")))
