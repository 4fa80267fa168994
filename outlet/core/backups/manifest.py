"""A backup's manifest.json: what the backup holds and how to check it.

Written last, after every part is complete, so a directory with a manifest is a finished
backup. The facts about the database (migrations applied per app, row counts, the Stripe
event high-water mark) are read inside the very snapshot pg_dump dumps (see create.py),
so a restore can compare its row counts exactly. No secret, address or connection
string is written here: the database is named by nothing but its engine and version.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.apps import apps
from django.db import connection

from .crypto import BackupError, manifest_key

FORMAT = "outlet-backup/1"
MANIFEST = "manifest.json"

# The tables whose row counts are recorded and checked after a restore: people, money,
# mail and what readers read. (Counted in the dump's snapshot: exact, not estimates.)
COUNTED_MODELS = (
    "auth.User",
    "articles.Article",
    "articles.ArticleImage",
    "pages.Page",
    "redirects.Redirect",
    "readers.Reader",
    "donations.Donor",
    "donations.Gift",
    "donations.Donation",
    "donations.Refund",
    "donations.StripeEvent",
    "donations.DonorEmail",
    "newsletters.Newsletter",
    "newsletters.Subscriber",
    "newsletters.Subscription",
    "newsletters.ConsentRecord",
    "newsletters.Suppression",
    "newsletters.Issue",
    "newsletters.Delivery",
)


@dataclass
class Part:
    file: str
    bytes: int
    sha256: str
    plain_bytes: int
    files: int | None = None  # media: how many files the tar holds


@dataclass(frozen=True)
class SnapshotFacts:
    """What the dump's snapshot holds, read inside it."""

    created_at: str
    database: dict[str, str]
    migrations: dict[str, list[str]]
    row_counts: dict[str, int]
    stripe_event_high_water: int | None


@dataclass
class Manifest:
    created_at: str  # the snapshot's time, UTC, ISO 8601
    finished_at: str
    database: dict[str, str]
    migrations: dict[str, list[str]]
    row_counts: dict[str, int]
    stripe_event_high_water: int | None  # newest applied event's `created`, epoch seconds
    encrypted: bool
    parts: dict[str, Part] = field(default_factory=dict)
    format: str = FORMAT
    encryption: str = ""
    # HMAC-SHA256 of everything above under a key derived from BACKUP_ENCRYPTION_KEY, on
    # an encrypted backup: whoever can write the backup store but lacks the key cannot
    # move the Stripe high-water mark (a restore would skip real payments) or the counts.
    seal: str = ""

    def _sealed_bytes(self) -> bytes:
        fields = asdict(self)
        fields.pop("seal")
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()

    def _seal_with(self, key: bytes) -> str:
        return hmac.new(manifest_key(key), self._sealed_bytes(), hashlib.sha256).hexdigest()

    def write(self, directory: Path, *, key: bytes | None = None) -> Path:
        if key is not None:
            self.seal = self._seal_with(key)
        path = directory / MANIFEST
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        return path

    def authenticate(self, key: bytes) -> None:
        """Refuse a manifest not sealed with `key` (changed, or from another key)."""
        if not self.seal or not hmac.compare_digest(self.seal, self._seal_with(key)):
            raise BackupError(
                "The backup's manifest was changed after the backup was made, or was made "
                "with another BACKUP_ENCRYPTION_KEY: it is not restored."
            )

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        path = directory / MANIFEST
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            raise BackupError(
                f"{directory} holds no {MANIFEST}: not a backup, or one that never finished."
            ) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BackupError(f"{path} is not valid JSON ({exc}).") from None
        if data.get("format") != FORMAT:
            raise BackupError(
                f"{path} is not an {FORMAT} manifest (format {data.get('format')!r})."
            )
        try:
            parts = {name: Part(**part) for name, part in data.pop("parts").items()}
            return cls(**data, parts=parts)
        except (KeyError, TypeError) as exc:
            raise BackupError(f"{path} is incomplete or malformed ({exc}).") from None


def utc_now() -> str:
    return datetime.now(tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def migrations_applied() -> dict[str, list[str]]:
    """Applied migrations per app, from django_migrations (in the current transaction)."""
    applied: dict[str, list[str]] = {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT app, name FROM django_migrations ORDER BY app, id")
        for app, name in cursor.fetchall():
            applied.setdefault(app, []).append(name)
    return applied


def row_counts() -> dict[str, int]:
    counts = {}
    for label in COUNTED_MODELS:
        counts[label] = apps.get_model(label).objects.count()
    return counts


def stripe_event_high_water() -> int | None:
    from outlet.donations.models import StripeEvent

    newest = StripeEvent.objects.exclude(created=None).order_by("-created").first()
    return int(newest.created.timestamp()) if newest and newest.created else None


def database_description() -> dict[str, str]:
    return {
        "vendor": connection.vendor,
        "server_version": str(getattr(connection, "pg_version", "")),
    }
