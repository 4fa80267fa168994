"""Error reporting to Sentry (or a compatible server) through sentry-sdk.

Only `sentry_init` imports the SDK, and outlet/settings/ calls it only when SENTRY_DSN is
set: without a DSN nothing is imported, patched or sent. Events go through the same
scrubber as the logs (`before_send`), with `send_default_pii=False` so the SDK itself
adds no user, cookie or client address.
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def release_guess(*, base_dir: Path) -> str | None:
    """The git commit checked out at `base_dir`, when there is one (OUTLET_RELEASE wins)."""
    try:
        result = subprocess.run(
            ["git", "-C", str(base_dir), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and commit else None


def sentry_init(
    *, dsn: str, release: str | None, environment: str, traces_sample_rate: float | None
) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration

    from .scrubbing import sentry_event_scrub

    sentry_sdk.init(
        dsn=dsn,
        release=release,
        environment=environment,
        send_default_pii=False,
        # Breadcrumbs are log lines and SQL: scrubbed at send time with the rest.
        before_send=sentry_event_scrub,
        before_send_transaction=sentry_event_scrub,
        traces_sample_rate=traces_sample_rate,
        # Request bodies hold addresses and names (sign-ups, donations): never sent.
        max_request_body_size="never",
        include_local_variables=False,
        integrations=[
            DjangoIntegration(),
            CeleryIntegration(monitor_beat_tasks=False),
            LoggingIntegration(),
        ],
    )
