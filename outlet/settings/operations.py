"""Metrics for Prometheus and logging."""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from outlet.core.metrics.access import metrics_allow_parse
from outlet.logging_config import LOG_FORMATS, logging_config
from outlet.settings.environment import BASE_DIR, DEBUG, VAR_DIR, env, read

# --- Metrics (/metrics for Prometheus; outlet/core/metrics/) -------------------

# Who may read /metrics: IP addresses or networks, and bearer tokens as bearer:<token>.
METRICS_ALLOW = metrics_allow_parse(read(env.list, "METRICS_ALLOW", default=["127.0.0.1", "::1"]))
# prometheus-client's multiprocess mode: every process of the stack (gunicorn workers,
# Celery's pool, beat) writes its counters to files here and /metrics sums them. One
# directory per host, emptied when the stack starts (runstack does; see the README).
# Set before prometheus_client is imported anywhere: it reads the variable on import.
METRICS_DIR = Path(env.str("PROMETHEUS_MULTIPROC_DIR", default=str(VAR_DIR / "metrics")))
METRICS_DIR.mkdir(parents=True, exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(METRICS_DIR)
# Issues whose deliveries /metrics counts by status: every sending or paused one, and
# this many of the most recently started others.
METRICS_RECENT_ISSUES = read(env.int, "METRICS_RECENT_ISSUES", default=3)

# --- Logging -----------------------------------------------------------------

# JSON lines in production, readable ones under DEBUG (either may be asked for).
LOG_FORMAT = read(env.str, "LOG_FORMAT", default="text" if DEBUG else "json")
if LOG_FORMAT not in LOG_FORMATS:
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or text, not {LOG_FORMAT!r}.")
LOGGING = logging_config(level=env.str("LOG_LEVEL", default="INFO"), log_format=LOG_FORMAT)

# --- Errors (Sentry, only when SENTRY_DSN is set; outlet/core/logs/sentry.py) --------

SENTRY_DSN = env.str("SENTRY_DSN", default="")
if SENTRY_DSN:
    from outlet.core.logs.sentry import release_guess, sentry_init

    _traces = env.str("SENTRY_TRACES_SAMPLE_RATE", default="")
    sentry_init(
        dsn=SENTRY_DSN,
        release=env.str("OUTLET_RELEASE", default="") or release_guess(base_dir=BASE_DIR),
        environment=env.str("SENTRY_ENVIRONMENT", default="development" if DEBUG else "production"),
        traces_sample_rate=read(env.float, "SENTRY_TRACES_SAMPLE_RATE") if _traces else None,
    )

# --- Backups (manage.py backup / restore; outlet/core/backups/) -------------------------

# 32 random bytes, URL-safe base64: backups are encrypted with it (streamed, any size).
# Empty: backups are written unencrypted (keep them on encrypted storage then).
BACKUP_ENCRYPTION_KEY: str = env.str("BACKUP_ENCRYPTION_KEY", default="")
if BACKUP_ENCRYPTION_KEY:
    from outlet.core.backups.crypto import BackupError, key_parse

    try:
        key_parse(BACKUP_ENCRYPTION_KEY)
    except BackupError as exc:
        raise ImproperlyConfigured(str(exc)) from None
# Where `manage.py backup` writes when no --output is given.
BACKUP_DIR = Path(env.str("BACKUP_DIR", default=str(VAR_DIR / "backups")))
