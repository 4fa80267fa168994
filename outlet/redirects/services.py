"""Writes for redirects: old addresses to paths here, never a loop or an outside address."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from django.core.exceptions import ValidationError
from django.utils import timezone

from .models import Redirect, validate_old_path, validate_target

MAX_PATH = Redirect._meta.get_field("old_path").max_length or 500


def old_path_from_url(url: str) -> str:
    """The path (and query, for /?p=123 links) a reader's old link arrives at, decoded as
    Django's `request.path` is; '' for an address that is no path on a site."""
    parts = urlsplit(url or "")
    path = unquote(parts.path or "/")
    if not path.startswith("/") or path.startswith("//"):
        return ""
    return f"{path}?{parts.query}" if parts.query else path


def redirects_set(*, targets: dict[str, str], source: str) -> dict[str, str]:
    """Make each old path answer 301 to its target, in one batch; the outcome per path.

    "imported" (new), "updated" (this source's redirect now goes elsewhere),
    "unchanged", "same" (the old address is the new one: no redirect needed),
    "skipped" (an editor or another import redirected it: left as it is),
    "failed" (not a path we can store: too long, or not a path on a site).
    """
    outcomes: dict[str, str] = {}
    wanted: dict[str, str] = {}
    for old_path, target in targets.items():
        try:
            validate_old_path(old_path)
            validate_target(target)
        except ValidationError:
            outcomes[old_path] = "failed"
            continue
        if len(old_path) > MAX_PATH or len(target) > MAX_PATH:
            outcomes[old_path] = "failed"
        elif old_path.rstrip("/") == target.rstrip("/"):
            outcomes[old_path] = "same"
        else:
            wanted[old_path] = target
    existing = {r.old_path: r for r in Redirect.objects.filter(old_path__in=list(wanted))}
    created, changed = [], []
    for old_path, target in wanted.items():
        redirect = existing.get(old_path)
        if redirect is None:
            created.append(Redirect(old_path=old_path, target=target, source=source))
            outcomes[old_path] = "imported"
        elif redirect.source != source:
            outcomes[old_path] = "skipped"
        elif redirect.target == target:
            outcomes[old_path] = "unchanged"
        else:
            redirect.target, redirect.updated_at = target, timezone.now()
            changed.append(redirect)
            outcomes[old_path] = "updated"
    Redirect.objects.bulk_create(created)
    Redirect.objects.bulk_update(changed, ["target", "updated_at"])
    return outcomes


def redirect_set(*, old_path: str, target: str, source: str) -> str:
    """One redirect (see redirects_set); its outcome."""
    return redirects_set(targets={old_path: target}, source=source)[old_path]
