"""Backups: `manage.py backup` (create.py) and `manage.py restore` (restore.py).

A backup is a directory `outlet-backup-<UTC time>/` holding `database.pgdump` (pg_dump's
custom format, one snapshot), `media.tar` (MEDIA_ROOT), each with `.enc` when
BACKUP_ENCRYPTION_KEY is set (crypto.py), and `manifest.json` (manifest.py). The restore
runbook is in docs/operations.md.
"""
