"""Review of `manage.py restore` (issue 25): never over a live database, never a plain
backup taken on trust where backups are meant to be encrypted."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from outlet.core.backups.create import backup_create
from outlet.core.backups.crypto import BackupError
from outlet.core.backups.restore import backup_restore
from outlet.donations.models import Donation
from tests.factories import DonationFactory

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="backups are of PostgreSQL"),
    pytest.mark.django_db(transaction=True),
]


def live_session() -> psycopg.Connection:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params)


def test_force_refuses_a_database_another_process_is_using(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BACKUP_ENCRYPTION_KEY = ""
    DonationFactory.create_batch(2)
    backup = backup_create(output_dir=tmp_path / "backups")
    DonationFactory()  # the live site went on after the backup
    with live_session() as worker:
        worker.execute("SELECT 1")
        with pytest.raises(BackupError, match="other sessions"):
            backup_restore(path=backup, force=True, replay=False)
    assert Donation.objects.count() == 3


def test_a_plain_backup_is_refused_where_backups_are_encrypted(settings, tmp_path):
    """An attacker who can write to the backup store swaps in a plain dump and a manifest
    saying `encrypted: false`: with a key configured, restore must not take it."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BACKUP_ENCRYPTION_KEY = ""
    plain = backup_create(output_dir=tmp_path / "backups")
    settings.BACKUP_ENCRYPTION_KEY = base64.urlsafe_b64encode(os.urandom(32)).decode()
    with pytest.raises(BackupError, match="not encrypted"):
        backup_restore(path=plain, force=True, replay=False)


def test_restored_ids_are_never_the_ones_the_old_site_gave_after_the_dump(settings, tmp_path):
    """The old site kept handing out ids after the dump (a donation, a reader whose
    sign-in link is in a mailbox, a PaymentIntent's metadata). The restored sequences must
    not give the same ids to new, different people."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BACKUP_ENCRYPTION_KEY = ""
    DonationFactory.create_batch(2)
    backup = backup_create(output_dir=tmp_path / "backups")
    after_dump = DonationFactory().pk  # the old site, after the snapshot
    connection.close()
    backup_restore(path=backup, force=True, replay=False)
    newcomer = DonationFactory()  # the restored site's first new donation
    assert Donation.objects.count() == 3
    assert newcomer.pk > after_dump


def test_a_backup_is_on_disk_before_its_directory_says_it_is_complete(
    settings, tmp_path, monkeypatch
):
    """Renamed without fsync, a power cut can leave `outlet-backup-…/` with a manifest
    and cut-off parts: the very half backup the rename is there to rule out."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BACKUP_ENCRYPTION_KEY = ""
    events: list[str] = []
    real_fsync, real_rename = os.fsync, Path.rename

    def fsync(descriptor):
        events.append("fsync " + os.path.basename(os.readlink(f"/proc/self/fd/{descriptor}")))
        return real_fsync(descriptor)

    def rename(self, target):
        events.append("rename")
        return real_rename(self, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(Path, "rename", rename)
    backup = backup_create(output_dir=tmp_path / "backups")
    before = events[: events.index("rename")]
    partial = ".partial-" + backup.name
    for name in ("fsync database.pgdump", "fsync media.tar", "fsync manifest.json"):
        assert name in before
    assert "fsync " + partial in before
    assert events[events.index("rename") + 1 :] == ["fsync backups"]
