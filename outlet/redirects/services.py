"""Writes for redirects: one old address, one target, never a loop or an outside address."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from .models import Redirect, validate_old_path, validate_target


def old_path_from_url(url: str) -> str:
    """The path (and query, for /?p=123 links) a reader's old link arrives at, decoded as
    Django's `request.path` is; '' for an address that is no path on a site."""
    parts = urlsplit(url or "")
    path = unquote(parts.path or "/")
    if not path.startswith("/") or path.startswith("//"):
        return ""
    return f"{path}?{parts.query}" if parts.query else path


def redirect_set(*, old_path: str, target: str, source: str) -> str:
    """Make `old_path` answer 301 to `target`; the outcome for the import report.

    An address an editor redirected by hand, or another import did, is left as it
    is ("skipped"); an old address that is the new one needs no redirect ("same").
    """
    validate_old_path(old_path)
    validate_target(target)
    if old_path.rstrip("/") == target.rstrip("/"):
        return "same"
    existing = Redirect.objects.filter(old_path=old_path).first()
    if existing is None:
        Redirect.objects.create(old_path=old_path, target=target, source=source)
        return "imported"
    if existing.source != source:
        return "skipped"
    if existing.target == target:
        return "unchanged"
    existing.target = target
    existing.save(update_fields=["target", "updated_at"])
    return "updated"
