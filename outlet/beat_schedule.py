"""What beat runs and how often: one table, built from the intervals outlet/settings/ reads
from the environment (the variables stay in outlet/settings/, next to their README rows)."""

from __future__ import annotations


def beat_schedule(
    *,
    tracking_flush_seconds: float,
    figures_refresh_seconds: float,
    tick_seconds: float,
    go_live_seconds: float | None,
    bounce_poll_seconds: float | None = None,
) -> dict[str, dict]:
    """`go_live_seconds` is None without a shared cache to purge: scheduled articles then
    go live by their publish time alone, with nothing for beat to do."""
    schedule: dict[str, dict] = {
        "beat-heartbeat": {"task": "core.beat_heartbeat", "schedule": 30.0},
        # Donor emails owed but never tried (the broker was down at commit) are queued again.
        "donations-emails-sweep": {"task": "donations.donor_emails_sweep", "schedule": 300.0},
        "newsletters-imports-expire": {
            "task": "newsletters.subscriber_imports_expire",
            "schedule": 86400.0,
        },
        "donations-checkouts-abandoned-expire": {
            "task": "donations.checkouts_abandoned_expire",
            "schedule": 3600.0,
        },
        # An archive import whose worker died mid-run is run again (it is idempotent).
        "importers-stalled-resume": {
            "task": "importers.archive_imports_stalled_resume",
            "schedule": 300.0,
        },
        "readers-link-uses-prune": {"task": "readers.reader_link_uses_prune", "schedule": 86400.0},
        "newsletters-tracking-flush": {
            "task": "newsletters.tracking_flush",
            "schedule": tracking_flush_seconds,
        },
        # On large tables the admin's figures are read from the cache; beat recounts them.
        "newsletters-subscriber-counts": {
            "task": "newsletters.subscriber_counts_refresh",
            "schedule": float(figures_refresh_seconds),
        },
        "donations-overview": {
            "task": "donations.overview_refresh",
            "schedule": float(figures_refresh_seconds),
        },
        "newsletters-issues-tick": {"task": "newsletters.issues_tick", "schedule": tick_seconds},
    }
    if go_live_seconds is not None:
        # Scheduled articles go live without a save: purge their pages when their time comes.
        schedule["articles-scheduled-go-live"] = {
            "task": "articles.scheduled_go_live",
            "schedule": go_live_seconds,
        }
    if bounce_poll_seconds is not None:
        # Bounces and complaints returned to our own mailbox (BOUNCE_MAILDIR, BOUNCE_IMAP_URL).
        schedule["newsletters-bounces-poll"] = {
            "task": "newsletters.bounce_mailboxes_poll",
            "schedule": bounce_poll_seconds,
        }
    return schedule
