"""Backups: the streaming encryption, the manifest, verification and the refusals of
`manage.py backup` / `restore` (outlet/core/backups/), and the Stripe replay after a
restore (donations/event_replay.py). The whole round trip on a working stack is the
restore drill (`make drill-restore`)."""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from outlet.core.backups import postgres
from outlet.core.backups.create import backup_create
from outlet.core.backups.crypto import (
    CHUNK,
    MAGIC,
    SALT_BYTES,
    TAG,
    BackupError,
    ChunkReader,
    PartWriter,
    key_parse,
    part_chunks,
)
from outlet.core.backups.manifest import Manifest
from outlet.core.backups.restore import backup_restore, backup_verify
from outlet.donations import stripe_gateway
from outlet.donations.event_replay import stripe_events_replay
from outlet.donations.models import Donation, StripeEvent
from tests.factories import DonationFactory

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="backups are of PostgreSQL"
)


def new_key() -> bytes:
    return key_parse(base64.urlsafe_b64encode(os.urandom(32)).decode())


def seal(data: bytes, key: bytes | None) -> bytes:
    stored = io.BytesIO()
    with PartWriter(stored, key) as writer:
        # Uneven pieces, as pg_dump's pipe gives them.
        for start in range(0, len(data), 10_000):
            writer.write(data[start : start + 10_000])
    return stored.getvalue()


def opened(stored: bytes, key: bytes | None) -> bytes:
    return b"".join(part_chunks(io.BytesIO(stored), key))


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17])
def test_encrypted_part_round_trips_at_every_chunk_boundary(size):
    key = new_key()
    data = os.urandom(size)
    stored = seal(data, key)
    if size >= 64:  # the plain bytes do not show through (a 1-byte run could, by chance)
        assert data[:64] not in stored
    assert opened(stored, key) == data


def test_writer_records_sha256_and_size_of_the_stored_bytes():
    import hashlib

    stored = io.BytesIO()
    with PartWriter(stored, new_key()) as writer:
        writer.write(b"x" * 100_000)
    assert writer.size == len(stored.getvalue())
    assert writer.sha256 == hashlib.sha256(stored.getvalue()).hexdigest()
    assert writer.plain_size == 100_000


def test_wrong_key_tampering_and_a_cut_off_file_are_refused():
    key = new_key()
    stored = seal(os.urandom(3 * CHUNK), key)
    with pytest.raises(BackupError, match="does not decrypt"):
        opened(stored, new_key())
    tampered = bytearray(stored)
    tampered[len(stored) // 2] ^= 1
    with pytest.raises(BackupError, match="does not decrypt"):
        opened(bytes(tampered), key)
    # Dropping the last chunk leaves a file that looks whole but lacks its final flag.
    with pytest.raises(BackupError, match="does not decrypt"):
        opened(stored[: len(MAGIC) + SALT_BYTES + 2 * (CHUNK + TAG)], key)


def test_encrypted_part_without_a_key_says_which_variable_to_set():
    stored = seal(b"secret rows", new_key())
    with pytest.raises(BackupError, match="BACKUP_ENCRYPTION_KEY"):
        opened(stored, None)


def test_plain_part_is_stored_as_is():
    assert seal(b"plain dump", None) == b"plain dump"
    assert opened(b"plain dump", None) == b"plain dump"


def test_chunk_reader_feeds_tarfile_streaming():
    import tarfile

    key = new_key()
    buffer = io.BytesIO()
    with PartWriter(buffer, key) as writer, tarfile.open(fileobj=writer, mode="w|") as tar:
        info = tarfile.TarInfo("a/b.txt")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    reader = ChunkReader(part_chunks(io.BytesIO(buffer.getvalue()), key))
    with tarfile.open(fileobj=reader, mode="r|") as tar:
        member = tar.next()
        assert member is not None and member.name == "a/b.txt"
        extracted = tar.extractfile(member)
        assert extracted is not None and extracted.read() == b"hello"


@pytest.mark.parametrize("raw", ["short", "x" * 44, base64.urlsafe_b64encode(b"k" * 16).decode()])
def test_a_malformed_key_is_refused_without_echoing_it(raw):
    with pytest.raises(BackupError) as refused:
        key_parse(raw)
    assert "BACKUP_ENCRYPTION_KEY" in str(refused.value)
    assert raw not in str(refused.value)


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor == "postgresql", reason="the SQLite refusal")
def test_backup_on_sqlite_says_it_is_for_postgresql(tmp_path):
    with pytest.raises(CommandError, match="PostgreSQL"):
        call_command("backup", "--output", str(tmp_path))
    assert list(tmp_path.iterdir()) == []


# --- On PostgreSQL: a real pg_dump of the test database -------------------------------


@pytest.fixture
def made_backup(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    (settings.MEDIA_ROOT / "articles").mkdir(parents=True)
    (settings.MEDIA_ROOT / "articles" / "photo.jpg").write_bytes(b"\xff\xd8 a photo")
    settings.BACKUP_ENCRYPTION_KEY = base64.urlsafe_b64encode(os.urandom(32)).decode()
    DonationFactory.create_batch(3)
    StripeEvent.objects.create(event_id="evt_old", type="x", created="2026-01-02T03:04:05Z")
    StripeEvent.objects.create(event_id="evt_new", type="x", created="2026-02-03T04:05:06Z")
    return backup_create(output_dir=tmp_path / "backups")


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_manifest_describes_the_dump_and_holds_no_secret(made_backup, settings):
    manifest = Manifest.read(made_backup)
    assert manifest.row_counts["donations.Donation"] == 3
    assert manifest.row_counts["donations.StripeEvent"] == 2
    assert manifest.stripe_event_high_water == 1770091506  # 2026-02-03T04:05:06Z
    assert "0001_initial" in manifest.migrations["donations"]
    assert manifest.created_at.endswith("Z") and manifest.encrypted
    assert manifest.parts["media"].files == 1
    assert sorted(path.name for path in made_backup.iterdir()) == [
        "database.pgdump.enc",
        "manifest.json",
        "media.tar.enc",
    ]
    text = (made_backup / "manifest.json").read_text()
    password = connection.settings_dict.get("PASSWORD") or "no-password-set"
    for secret in (settings.BACKUP_ENCRYPTION_KEY, settings.SECRET_KEY, password):
        assert secret not in text
    assert connection.settings_dict["NAME"] not in text
    assert backup_verify(path=made_backup) == manifest


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_changed_or_missing_part_fails_verification(made_backup):
    dump = made_backup / "database.pgdump.enc"
    data = bytearray(dump.read_bytes())
    data[100] ^= 1
    dump.write_bytes(bytes(data))
    with pytest.raises(BackupError, match="sha256"):
        backup_verify(path=made_backup)
    dump.write_bytes(bytes(data[:-10]))
    with pytest.raises(BackupError, match="cut short"):
        backup_verify(path=made_backup)
    (made_backup / "media.tar.enc").unlink()
    dump.unlink()
    with pytest.raises(BackupError, match="missing"):
        backup_verify(path=made_backup)


def test_a_directory_without_manifest_is_not_a_backup(tmp_path):
    with pytest.raises(BackupError, match="never finished"):
        backup_verify(path=tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(BackupError, match="not an outlet-backup"):
        backup_verify(path=tmp_path)


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_restore_refuses_a_database_that_has_tables(made_backup):
    before = Donation.objects.count()
    with pytest.raises(BackupError, match="already has .* tables"):
        backup_restore(path=made_backup)
    with pytest.raises(CommandError, match="--force"):
        call_command("restore", str(made_backup))
    assert Donation.objects.count() == before


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_restore_refuses_an_encrypted_backup_without_its_key(made_backup, settings):
    settings.BACKUP_ENCRYPTION_KEY = ""
    with pytest.raises(BackupError, match="set BACKUP_ENCRYPTION_KEY"):
        backup_restore(path=made_backup)


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_failed_dump_leaves_no_backup_directory(settings, tmp_path, monkeypatch):
    settings.MEDIA_ROOT = tmp_path / "media"
    monkeypatch.setattr(postgres, "tool", lambda name: "/bin/false")
    with pytest.raises(BackupError, match="pg_dump failed"):
        backup_create(output_dir=tmp_path / "backups")
    assert list((tmp_path / "backups").iterdir()) == []


# --- The Stripe replay after a restore ---------------------------------------------------


def succeeded_event(donation: Donation, event_id: str, created: int) -> dict:
    return {
        "id": event_id,
        "type": "payment_intent.succeeded",
        "created": created,
        "data": {
            "object": {
                "id": f"pi_{event_id}",
                "object": "payment_intent",
                "status": "succeeded",
                "amount": donation.amount,
                "currency": donation.currency,
                "metadata": {"donation_id": str(donation.pk)},
                "charges": {"data": [{"id": f"ch_{event_id}"}]},
            }
        },
    }


@pytest.mark.django_db
def test_replay_applies_payments_missed_by_the_restored_database_once(monkeypatch):
    missed = DonationFactory(stripe_payment_intent_id=None)
    asked: list[int] = []

    def events_list(*, created_gte):
        asked.append(created_gte)
        return iter(
            [
                succeeded_event(missed, "evt_after_dump", 1_800_000_100),
                {"id": "evt_other", "type": "customer.created", "created": 1_800_000_050,
                 "data": {"object": {}}},
            ]
        )  # fmt: skip

    monkeypatch.setattr(stripe_gateway, "events_list", events_list)
    first = stripe_events_replay(since=1_800_000_000)
    second = stripe_events_replay(since=1_800_000_000)

    missed.refresh_from_db()
    assert asked == [1_800_000_000, 1_800_000_000]
    assert missed.status == Donation.Status.PAID
    assert first.applied == 1 and first.outcomes["ignored"] == 1
    assert second.applied == 0 and second.outcomes["repeat"] == 1
    assert StripeEvent.objects.get(event_id="evt_after_dump").created is not None


@pytest.mark.django_db
def test_replay_command_fails_loudly_when_stripe_is_unreachable(monkeypatch):
    def unreachable(*, created_gte):
        raise stripe_gateway.StripeError("down")

    monkeypatch.setattr(stripe_gateway, "events_list", unreachable)
    with pytest.raises(stripe_gateway.StripeError):
        call_command("stripe_events_replay", "--since", "1800000000")


@pytest.mark.django_db
def test_localstripe_lists_the_events_it_sent_through_the_gateway(localstripe):
    import time

    since = int(time.time()) - 1
    customer = stripe_gateway.customer_create(
        email="lister@example.com", name="Lister", idempotency_key=f"lister-{since}"
    )
    listed = list(stripe_gateway.events_list(created_gte=since))
    created = [event for event in listed if event["type"] == "customer.created"]
    assert customer["id"] in [event["data"]["object"]["id"] for event in created]
    assert all(event["created"] >= since for event in listed)


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_two_backups_in_one_second_get_two_directories(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    first = backup_create(output_dir=tmp_path / "backups")
    second = backup_create(output_dir=tmp_path / "backups")
    assert first != second
    assert backup_verify(path=first) and backup_verify(path=second)


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_restore_refuses_a_backup_made_by_a_newer_release(made_backup, settings):
    manifest = Manifest.read(made_backup)
    manifest.migrations["donations"].append("9999_from_the_future")
    manifest.write(made_backup, key=key_parse(settings.BACKUP_ENCRYPTION_KEY))
    with pytest.raises(BackupError, match="newer release.*donations.9999_from_the_future"):
        backup_restore(path=made_backup, force=True)


def _manifest(**changes) -> Manifest:
    fields = {
        "created_at": "2026-12-07T10:00:00Z",
        "finished_at": "2026-12-07T10:01:00Z",
        "database": {"vendor": "postgresql", "server_version": "170000"},
        "migrations": {"donations": ["0001_initial"]},
        "row_counts": {"donations.Donation": 3},
        "stripe_event_high_water": 1770091506,
        "encrypted": True,
    }
    return Manifest(**{**fields, **changes})


def test_an_encrypted_backups_manifest_cannot_be_changed_without_the_key(tmp_path):
    # Moving the replay's starting point forward would make a restore skip real payments.
    key = new_key()
    _manifest().write(tmp_path, key=key)
    Manifest.read(tmp_path).authenticate(key)  # as written: accepted

    data = json.loads((tmp_path / "manifest.json").read_text())
    data["stripe_event_high_water"] += 86400
    (tmp_path / "manifest.json").write_text(json.dumps(data))

    with pytest.raises(BackupError, match="manifest"):
        Manifest.read(tmp_path).authenticate(key)
    with pytest.raises(BackupError, match="manifest"):
        Manifest.read(tmp_path).authenticate(new_key())


def test_an_encrypted_backups_manifest_without_its_seal_is_refused(tmp_path):
    key = new_key()
    _manifest().write(tmp_path, key=key)
    data = json.loads((tmp_path / "manifest.json").read_text())
    data["seal"] = ""
    (tmp_path / "manifest.json").write_text(json.dumps(data))

    with pytest.raises(BackupError, match="manifest"):
        Manifest.read(tmp_path).authenticate(key)


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_restore_refuses_a_manifest_changed_after_the_backup(made_backup, settings):
    data = json.loads((made_backup / "manifest.json").read_text())
    data["stripe_event_high_water"] += 86400
    (made_backup / "manifest.json").write_text(json.dumps(data))

    with pytest.raises(BackupError, match="manifest"):
        backup_restore(path=made_backup, force=True, replay=False)
