"""
outlet's settings: one module, every knob read from the environment.

The defaults are the ones `make run` needs on a fresh machine (SQLite, an
embedded filesystem broker, localstripe, mail captured on loopback). With
DEBUG off, unsafe values stop startup with a message naming the variable;
see the configuration table in README.md.
"""

import os
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from outlet.anymail_environment import anymail_from_environment
from outlet.articles.editor_extensions import PROSE_EDITOR_EXTENSIONS
from outlet.beat_schedule import beat_schedule
from outlet.core.dkim_config import dkim_key_read
from outlet.core.metrics.access import metrics_allow_parse
from outlet.logging_config import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("OUTLET_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env()


def _read(reader, name: str, **kwargs):
    """Read one variable; a malformed value stops startup and names it."""
    try:
        return reader(name, **kwargs)
    except (ValueError, ImproperlyConfigured) as exc:
        raise ImproperlyConfigured(f"Environment variable {name} is malformed: {exc}") from exc


DEBUG: bool = _read(env.bool, "DEBUG", default=False)

# --- Secrets and hosts -------------------------------------------------------

_DEV_SECRET_KEY = "django-insecure-outlet-development-only-never-use-in-production"  # noqa: S105 (refused when DEBUG is off)
SECRET_KEY: str = env.str("SECRET_KEY", default=_DEV_SECRET_KEY if DEBUG else "")
if not DEBUG and (
    not SECRET_KEY
    or SECRET_KEY.startswith("django-insecure")
    or len(SECRET_KEY) < 50
    or len(set(SECRET_KEY)) < 5
):
    raise ImproperlyConfigured(
        "SECRET_KEY is missing, a default, or shorter than 50 characters. With DEBUG off, "
        "set SECRET_KEY to a long random value, e.g. "
        "python -c 'import secrets; print(secrets.token_urlsafe(64))'. On a development "
        "machine, run the command with DEBUG=1 (as `make run` does)."
    )

SITE_URL: str = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
_site = urlsplit(SITE_URL)
if _site.scheme not in ("http", "https") or not _site.hostname:
    raise ImproperlyConfigured(f"SITE_URL must be an absolute http(s) URL, not {SITE_URL!r}")

ALLOWED_HOSTS: list[str] = _read(
    env.list,
    "ALLOWED_HOSTS",
    default=[_site.hostname, "127.0.0.1", "localhost", "[::1]"] if DEBUG else [_site.hostname],
)
CSRF_TRUSTED_ORIGINS: list[str] = _read(
    env.list, "CSRF_TRUSTED_ORIGINS", default=[f"{_site.scheme}://{_site.netloc}"]
)

# --- Applications ------------------------------------------------------------

INSTALLED_APPS = [
    "outlet.core",
    "outlet.articles",
    "outlet.donations",
    "outlet.newsletters",
    "outlet.readers",
    "outlet.pages",
    "outlet.redirects",
    "outlet.importers",
    "anymail",
    "django_prose_editor",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.sitemaps",
    "django.contrib.humanize",
]


DJANGO_PROSE_EDITOR_EXTENSIONS = PROSE_EDITOR_EXTENSIONS

MIDDLEWARE = [
    # Request counts and latency by view for /metrics, around everything else (pages the
    # WSGI page cache answers in front of Django are counted there, as "page_cache").
    "outlet.core.metrics.middleware.RequestMetricsMiddleware",
    # First, so a cached public page skips the rest; it stores pages after all the others ran.
    "outlet.articles.caching.PageCacheMiddleware",
    # Inside the page cache, so it sees /account/'s 404s and 405s already marked no-store.
    "outlet.readers.middleware.AccountNeverCacheMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Old addresses (an imported archive's permalinks) answer 301 where the site has nothing;
    # after WhiteNoise, so static files never reach it.
    "outlet.redirects.middleware.RedirectMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "outlet.urls"
WSGI_APPLICATION = "outlet.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "outlet.core.context_processors.site",
            ],
        },
    },
]

# --- Data --------------------------------------------------------------------

DATABASES = {
    "default": _read(env.db_url, "DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'outlet.sqlite3'}"),
}
if not DATABASES["default"].get("ENGINE"):
    raise ImproperlyConfigured(
        "Environment variable DATABASE_URL is malformed: use postgres://user:pass@host:5432/name "
        "or sqlite:////absolute/path.sqlite3"
    )
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share one SQLite file in the embedded default: WAL lets
    # readers run beside a writer, IMMEDIATE makes writers queue instead of failing.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # A file, not :memory:, so worker processes started by tests see the test data.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-outlet.sqlite3")}
else:
    DATABASES["default"]["CONN_MAX_AGE"] = _read(env.int, "DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if not DEBUG and not env.str("CACHE_URL", default=""):
    # A per-process cache would make rate limits per process (card testing gets N times
    # the attempts) and page caches impossible to invalidate across web processes.
    raise ImproperlyConfigured(
        "CACHE_URL is required when DEBUG is off, e.g. rediscache://127.0.0.1:6379/1 "
        "(a cache shared by every web process)."
    )
CACHES = {
    "default": _read(env.cache_url, "CACHE_URL", default=f"filecache://{VAR_DIR / 'cache'}"),
}
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    CACHES["default"]["BACKEND"] = "outlet.core.cache.RedisCache"
CACHE_MIDDLEWARE_SECONDS = _read(env.int, "CACHE_PAGE_SECONDS", default=300)

# --- Shared cache in front (Varnish, a CDN): see articles/edge.py and core/purgers.py ---

# "varnish" (xkey PURGE), "http" (POST {"keys": [...]}), a dotted path to a Purger
# class, or empty: no purges, and pages keep the browser-only Cache-Control.
EDGE_PURGER: str = env.str("EDGE_PURGER", default="")
EDGE_PURGE_URLS: list[str] = _read(env.list, "EDGE_PURGE_URLS", default=[])
EDGE_PURGE_TOKEN: str = env.str("EDGE_PURGE_TOKEN", default="")
if EDGE_PURGER and not EDGE_PURGE_URLS and EDGE_PURGER in ("varnish", "http"):
    raise ImproperlyConfigured("EDGE_PURGER is set: EDGE_PURGE_URLS must name where to purge.")
# How long the shared cache keeps a reader page (s-maxage); 0 sends none.
EDGE_CACHE_SECONDS: int = _read(env.int, "EDGE_CACHE_SECONDS", default=3600 if EDGE_PURGER else 0)
OUTLET_BEHIND_PROXY: bool = env.bool("OUTLET_BEHIND_PROXY", default=False)
if not DEBUG and EDGE_CACHE_SECONDS > 0 and not EDGE_PURGER:
    raise ImproperlyConfigured(
        "EDGE_CACHE_SECONDS is set but EDGE_PURGER is empty: nothing would purge a "
        "taken-down article from the shared cache. Set EDGE_PURGER or EDGE_CACHE_SECONDS=0."
    )
if not DEBUG and EDGE_PURGER and not OUTLET_BEHIND_PROXY:
    raise ImproperlyConfigured(
        "EDGE_PURGER is set: readers reach the site through the shared cache, so set "
        "OUTLET_BEHIND_PROXY=1 (else every reader shares one rate-limit address)."
    )
EDGE_STALE_WHILE_REVALIDATE: int = _read(env.int, "EDGE_STALE_WHILE_REVALIDATE", default=30)
EDGE_STALE_IF_ERROR: int = _read(env.int, "EDGE_STALE_IF_ERROR", default=86400)
# A purge is sent again this long after the first, for pages whose render began before
# the commit and reached the cache after it: above Varnish's first_byte_timeout (30 s).
EDGE_PURGE_REPEAT_SECONDS: int = _read(env.int, "EDGE_PURGE_REPEAT_SECONDS", default=40)
# The surrogate-key header: "xkey" for Varnish; a CDN may want Surrogate-Key or Cache-Tag.
EDGE_KEY_HEADER: str = env.str("EDGE_KEY_HEADER", default="xkey")

# --- Celery ------------------------------------------------------------------

_BROKER_DIR = VAR_DIR / "broker"
CELERY_VISIBILITY_TIMEOUT: int = _read(env.int, "CELERY_VISIBILITY_TIMEOUT", default=900)
# A retry waits in a worker, unacknowledged, for its countdown; one longer than the
# visibility timeout would be handed to a second worker meanwhile. Retries stay shorter.
TASK_RETRY_MAX_SECONDS: int = max(1, CELERY_VISIBILITY_TIMEOUT * 2 // 3)
CELERY_BROKER_URL: str = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for _sub in ("in", "processed", "control"):
        (_BROKER_DIR / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_BROKER_DIR / "in"),
        "data_folder_out": str(_BROKER_DIR / "in"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        "control_folder": str(_BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "socket_connect_timeout": 3,
        "socket_timeout": 10,
        # On Redis, a task a killed worker had taken goes back to the queue after this
        # long (late acks): a receipt on a worker that died waits at most this.
        "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    }
CELERY_TASK_ACKS_LATE = True
# Celery's Django fix-up closes the database connection around every task; a newsletter
# batch task would open a new PostgreSQL connection each time. Reuse one for this many tasks.
CELERY_DB_REUSE_MAX = _read(env.int, "CELERY_DB_REUSE_MAX", default=100)
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_DEFAULT_ROUTING_KEY = "default"
# Purges have a queue of their own: retried through a Varnish outage, they must never
# delay a sign-in link or a receipt on `mail` (outlet/celery.py lists the queues).
CELERY_TASK_ROUTES = {"articles.edge_purge": {"queue": "purge", "routing_key": "purge"}}
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = "UTC"
# A worker writes a heartbeat this often; /healthz calls a worker dead after 3 missed beats.
OUTLET_WORKER_HEARTBEAT_SECONDS = _read(env.int, "OUTLET_WORKER_HEARTBEAT_SECONDS", default=10)

# --- Stripe ------------------------------------------------------------------

STRIPE_API_BASE: str = env.str(
    "STRIPE_API_BASE", default="http://127.0.0.1:8420" if DEBUG else "https://api.stripe.com"
).rstrip("/")
STRIPE_JS_URL: str = env.str(
    "STRIPE_JS_URL",
    default=f"{STRIPE_API_BASE}/js.stripe.com/v3/" if DEBUG else "https://js.stripe.com/v3/",
)
STRIPE_SECRET_KEY: str = env.str(
    "STRIPE_SECRET_KEY", default="sk_test_outlet_localstripe" if DEBUG else ""
)
STRIPE_PUBLISHABLE_KEY: str = env.str(
    "STRIPE_PUBLISHABLE_KEY", default="pk_test_outlet_localstripe" if DEBUG else ""
)
STRIPE_WEBHOOK_SECRET: str = env.str(
    "STRIPE_WEBHOOK_SECRET", default="whsec_outlet_localstripe_development" if DEBUG else ""
)
STRIPE_LIVE_MODE: bool = _read(env.bool, "STRIPE_LIVE_MODE", default=False)
# Which shape of the API the gateway speaks: "current" (the pinned SDK's version, real
# Stripe) or "localstripe" (its 2017-08-15 dialect, development and tests only). Said
# explicitly, never guessed from STRIPE_API_BASE, so a proxy in front of Stripe cannot
# switch production to the old dialect.
STRIPE_DIALECT: str = env.str("STRIPE_DIALECT", default="localstripe" if DEBUG else "current")
if STRIPE_DIALECT not in ("current", "localstripe"):
    raise ImproperlyConfigured("STRIPE_DIALECT must be 'current' or 'localstripe'.")
if STRIPE_DIALECT == "localstripe" and not DEBUG:
    raise ImproperlyConfigured(
        "STRIPE_DIALECT=localstripe is for development; production speaks 'current'."
    )
if not DEBUG:
    for _name in ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET"):
        if not globals()[_name]:
            raise ImproperlyConfigured(f"{_name} is required when DEBUG is off.")
if STRIPE_SECRET_KEY.startswith(("sk_live_", "rk_live_")) and not STRIPE_LIVE_MODE:
    raise ImproperlyConfigured(
        "STRIPE_SECRET_KEY is a live key. Set STRIPE_LIVE_MODE=1 on purpose to take real money."
    )
# "needed": trust a verified payment_intent.succeeded whose amount and currency match the
# recorded donation (a succeeded PaymentIntent never changes back) and fetch from Stripe
# only when they do not; "always": fetch every money object again, as pretix does.
STRIPE_WEBHOOK_REFETCH: str = env.str("STRIPE_WEBHOOK_REFETCH", default="needed")
if STRIPE_WEBHOOK_REFETCH not in ("needed", "always"):
    raise ImproperlyConfigured("STRIPE_WEBHOOK_REFETCH must be 'needed' or 'always'.")

# --- Donations ---------------------------------------------------------------

DONATION_CURRENCY: str = env.str("DONATION_CURRENCY", default="usd").lower()
# Amounts in minor units (cents).
DONATION_PRESETS: list[int] = _read(
    env.list, "DONATION_PRESETS", cast=int, default=[1000, 2500, 5000, 10000]
)
DONATION_MIN_AMOUNT: int = _read(env.int, "DONATION_MIN_AMOUNT", default=300)
DONATION_MAX_AMOUNT: int = _read(env.int, "DONATION_MAX_AMOUNT", default=1_000_000)
# "Cover the fee" grosses the gift up so that, after PERCENT % + FIXED minor units, the
# newsroom receives the chosen amount.
DONATION_FEE_PERCENT: float = _read(env.float, "DONATION_FEE_PERCENT", default=2.9)
DONATION_FEE_FIXED: int = _read(env.int, "DONATION_FEE_FIXED", default=30)
DONATION_TAX_STATEMENT: str = env.str(
    "DONATION_TAX_STATEMENT",
    default="No goods or services were provided in exchange for this contribution. "
    "Please keep this receipt for your tax records.",
)
# Reader accounts (/account/): a sign-in link works READER_SIGN_IN_MAX_AGE seconds, once;
# the session it opens lasts READER_SESSION_AGE; a link to confirm a new address works
# READER_EMAIL_CHANGE_MAX_AGE. Links per hour: per address from one IP, per address from
# everywhere, per IP.
READER_SIGN_IN_MAX_AGE: int = _read(env.int, "READER_SIGN_IN_MAX_AGE", default=900)
READER_SESSION_AGE: int = _read(env.int, "READER_SESSION_AGE", default=4 * 3600)
READER_EMAIL_CHANGE_MAX_AGE: int = _read(env.int, "READER_EMAIL_CHANGE_MAX_AGE", default=86400)
READER_LINKS_PER_HOUR: int = _read(env.int, "READER_LINKS_PER_HOUR", default=3)
READER_LINKS_PER_ADDRESS_PER_HOUR: int = _read(
    env.int, "READER_LINKS_PER_ADDRESS_PER_HOUR", default=10
)
# Nothing passes this, not even a first request from a new IP (which passes the cap above).
READER_LINKS_PER_ADDRESS_CEILING: int = _read(
    env.int, "READER_LINKS_PER_ADDRESS_CEILING", default=20
)
READER_LINKS_PER_IP_PER_HOUR: int = _read(env.int, "READER_LINKS_PER_IP_PER_HOUR", default=20)
if not DEBUG and not 60 <= READER_SIGN_IN_MAX_AGE <= 3600:
    # A sign-in link is a password sent by email: minutes, not days.
    raise ImproperlyConfigured("READER_SIGN_IN_MAX_AGE must be between 60 and 3600 seconds.")
# Payment attempts allowed per window, per client IP and per email address (card testing).
DONATION_RATE_LIMIT_PER_IP: int = _read(env.int, "DONATION_RATE_LIMIT_PER_IP", default=20)
DONATION_RATE_LIMIT_PER_EMAIL: int = _read(env.int, "DONATION_RATE_LIMIT_PER_EMAIL", default=8)
DONATION_RATE_LIMIT_WINDOW: int = _read(env.int, "DONATION_RATE_LIMIT_WINDOW", default=3600)
# A checkout that never reached Stripe's charge step is marked abandoned after this long.
DONATION_CHECKOUT_EXPIRY_HOURS: int = _read(env.int, "DONATION_CHECKOUT_EXPIRY_HOURS", default=24)

# --- Email -------------------------------------------------------------------

if not DEBUG and not (env.str("EMAIL_URL", default="") or env.str("EMAIL_BACKEND", default="")):
    # No silent console fallback: it would print receipts, sign-in links and addresses to logs.
    raise ImproperlyConfigured(
        "EMAIL_URL (e.g. smtp+tls://user:pass@smtp.example.org:587) or EMAIL_BACKEND "
        "(an anymail backend) is required when DEBUG is off."
    )
_email = _read(env.email_url, "EMAIL_URL", default="smtp://127.0.0.1:1025")
EMAIL_HOST: str = _email.get("EMAIL_HOST", "")
EMAIL_PORT: int = _email.get("EMAIL_PORT") or 25
EMAIL_HOST_USER: str = _email.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD: str = _email.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS: bool = bool(_email.get("EMAIL_USE_TLS"))
EMAIL_USE_SSL: bool = bool(_email.get("EMAIL_USE_SSL"))
# An ESP through django-anymail, e.g. EMAIL_BACKEND=anymail.backends.postmark.EmailBackend
# with ANYMAIL_POSTMARK_SERVER_TOKEN in the environment (anymail reads it from there).
EMAIL_BACKEND: str = env.str("EMAIL_BACKEND", default=_email["EMAIL_BACKEND"])
if EMAIL_BACKEND == "django.core.mail.backends.smtp.EmailBackend":
    # Django's, with DKIM signing when DKIM_* are set (outlet/core/smtp_backend.py).
    EMAIL_BACKEND = "outlet.core.smtp_backend.EmailBackend"
EMAIL_TIMEOUT = _read(env.int, "EMAIL_TIMEOUT", default=20)
DEFAULT_FROM_EMAIL: str = env.str("DEFAULT_FROM_EMAIL", default="The Outlet <hello@outlet.test>")
SERVER_EMAIL: str = env.str("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)
# Shared secret anymail checks on its tracking and inbound webhooks (/anymail/<esp>/...),
# as "user:password"; ESPs that sign webhooks take their own keys (see anymail's docs).
ANYMAIL = anymail_from_environment(
    os.environ,
    boolean=lambda name: _read(env.bool, name),
    number=lambda name: _read(env.float, name),
)
if not DEBUG:
    # Unsecured, the provider's webhooks let anyone suppress any address.
    from outlet.newsletters.esp_webhooks import esp_webhook_problem

    if _esp_problem := esp_webhook_problem(email_backend=EMAIL_BACKEND, anymail=ANYMAIL):
        raise ImproperlyConfigured(_esp_problem)
# DKIM (RFC 6376) for mail sent through our own SMTP relay (never through an ESP, which
# signs itself): the selector, the domain (d=, aligned with the From addresses for DMARC)
# and the private key as PEM text or a file; `manage.py dkim_keygen` makes a key and prints
# its DNS record. A selector without a readable key stops startup (core/dkim_config.py).
DKIM_SELECTOR: str = env.str("DKIM_SELECTOR", default="")
DKIM_DOMAIN: str = env.str("DKIM_DOMAIN", default="")
DKIM_PRIVATE_KEY: str = dkim_key_read(
    selector=DKIM_SELECTOR,
    domain=DKIM_DOMAIN,
    pem=env.str("DKIM_PRIVATE_KEY", default=""),
    path=env.str("DKIM_PRIVATE_KEY_FILE", default=""),
)
# Where `make run`'s local SMTP capture stores mail, read by the staff outbox page.
OUTLET_OUTBOX_DIR = VAR_DIR / "outbox"
# Bounces through our own relay (outlet/newsletters/bounces/): with BOUNCE_DOMAIN set, mail
# goes out with the envelope sender bounces+<signed token>@BOUNCE_DOMAIN, and what comes
# back is taken in by `manage.py bounce_receive` (a Postfix pipe) or polled by beat from
# BOUNCE_MAILDIR and/or BOUNCE_IMAP_URL (imaps://user:password@host/INBOX). BOUNCE_KEEP
# off deletes a message once taken in (one not understood is always kept, set aside).
BOUNCE_DOMAIN: str = env.str("BOUNCE_DOMAIN", default="").strip().lower()
BOUNCE_MAILDIR: str = env.str("BOUNCE_MAILDIR", default="")
BOUNCE_IMAP_URL: str = env.str("BOUNCE_IMAP_URL", default="")
BOUNCE_KEEP: bool = _read(env.bool, "BOUNCE_KEEP", default=True)
if BOUNCE_IMAP_URL and not BOUNCE_IMAP_URL.startswith(("imaps://", "imap://")):
    raise ImproperlyConfigured("BOUNCE_IMAP_URL must start with imaps:// or imap:// (STARTTLS).")

# --- The outlet --------------------------------------------------------------

OUTLET_NAME: str = env.str("OUTLET_NAME", default="The Outlet")
# The publisher's logo in JSON-LD (an address of a PNG or JPEG that fits 600×60);
# empty means the bundled static/img/logo.png.
OUTLET_LOGO_URL: str = env.str("OUTLET_LOGO_URL", default="")
OUTLET_TAGLINE: str = env.str(
    "OUTLET_TAGLINE", default="Independent political analysis, paid for by its readers"
)
OUTLET_POSTAL_ADDRESS: str = env.str(
    "OUTLET_POSTAL_ADDRESS",
    default="The Outlet, 100 Example Street, Springfield, ST 00000, USA" if DEBUG else "",
)
if not DEBUG and not OUTLET_POSTAL_ADDRESS:
    raise ImproperlyConfigured(
        "OUTLET_POSTAL_ADDRESS is required when DEBUG is off: bulk mail must carry it."
    )

# --- Newsletters (audience) --------------------------------------------------

# How long a confirmation link works, and how often one address may get a new one.
NEWSLETTER_CONFIRM_MAX_AGE = _read(env.int, "NEWSLETTER_CONFIRM_MAX_AGE", default=7 * 24 * 3600)
NEWSLETTER_CONFIRM_RESEND_SECONDS = _read(
    env.int, "NEWSLETTER_CONFIRM_RESEND_SECONDS", default=15 * 60
)
NEWSLETTER_PREFERENCES_MAX_AGE = _read(
    env.int, "NEWSLETTER_PREFERENCES_MAX_AGE", default=365 * 24 * 3600
)
# Sign-up attempts allowed per client IP and per address in each window.
NEWSLETTER_SIGNUP_RATE_PER_IP = _read(env.int, "NEWSLETTER_SIGNUP_RATE_PER_IP", default=10)
NEWSLETTER_SIGNUP_RATE_PER_EMAIL = _read(env.int, "NEWSLETTER_SIGNUP_RATE_PER_EMAIL", default=5)
NEWSLETTER_SIGNUP_RATE_WINDOW = _read(env.int, "NEWSLETTER_SIGNUP_RATE_WINDOW", default=3600)
# Soft bounces in a row after which an address is suppressed.
NEWSLETTER_SOFT_BOUNCE_LIMIT = _read(env.int, "NEWSLETTER_SOFT_BOUNCE_LIMIT", default=3)
# The mailto: half of List-Unsubscribe; empty to offer only the https link.
NEWSLETTER_UNSUBSCRIBE_MAILTO: str = env.str(
    "NEWSLETTER_UNSUBSCRIBE_MAILTO", default=f"unsubscribe@{_site.hostname}"
)
# CSV imports larger than this many rows run in a Celery task.
NEWSLETTER_IMPORT_INLINE_ROWS = _read(env.int, "NEWSLETTER_IMPORT_INLINE_ROWS", default=2000)
# A finished import's stored rows (the addresses in its file, its refused addresses) are
# deleted this many days after it finished; its counts stay.
NEWSLETTER_IMPORT_RETENTION_DAYS = _read(env.int, "NEWSLETTER_IMPORT_RETENTION_DAYS", default=30)

# --- Newsletters (sending issues) ---------------------------------------------

# Deliveries one batch task claims and sends over one SMTP connection.
NEWSLETTER_BATCH_SIZE = _read(env.int, "NEWSLETTER_BATCH_SIZE", default=500)
# Batch tasks kept in flight per sending issue (about the bulk workers' total concurrency).
NEWSLETTER_SEND_LANES = _read(env.int, "NEWSLETTER_SEND_LANES", default=4)
# How long a claimed batch is a worker's; after that a dead worker's rows are claimed again.
NEWSLETTER_LEASE_SECONDS = _read(env.int, "NEWSLETTER_LEASE_SECONDS", default=300)
# Messages per second across all workers (0: no limit); counted in the cache, so the
# limit is global with a shared cache (Redis) and per process with locmem.
NEWSLETTER_RATE_LIMIT_PER_SECOND = _read(env.int, "NEWSLETTER_RATE_LIMIT_PER_SECOND", default=0)
# Temporary failures (4xx, dropped connections) are retried this many times in all,
# waiting NEWSLETTER_RETRY_SECONDS, then twice that, and so on.
NEWSLETTER_MAX_ATTEMPTS = _read(env.int, "NEWSLETTER_MAX_ATTEMPTS", default=5)
NEWSLETTER_RETRY_SECONDS = _read(env.int, "NEWSLETTER_RETRY_SECONDS", default=60)
# A send paused because the mail server was unreachable is retried after this long.
NEWSLETTER_SMTP_DOWN_RETRY_SECONDS = _read(
    env.int, "NEWSLETTER_SMTP_DOWN_RETRY_SECONDS", default=60
)
# The bounce-rate breaker (docs/sending-faults.md): once a window of this many messages
# has been judged by the servers, more hard bounces ("no such mailbox") than this share
# of it pause the issue for the editor and suppress nobody (a relay refusing everyone
# is not a list of dead addresses); at or below it, the window's bounces are suppressed.
# A rate of 1 or more turns the breaker off (every hard bounce suppresses at once).
NEWSLETTER_BOUNCE_BREAKER_RATE = _read(env.float, "NEWSLETTER_BOUNCE_BREAKER_RATE", default=0.1)
NEWSLETTER_BOUNCE_BREAKER_SAMPLE = _read(env.int, "NEWSLETTER_BOUNCE_BREAKER_SAMPLE", default=200)
if NEWSLETTER_BOUNCE_BREAKER_RATE <= 0 or NEWSLETTER_BOUNCE_BREAKER_SAMPLE < 1:
    raise ImproperlyConfigured(
        "NEWSLETTER_BOUNCE_BREAKER_RATE must be above 0 (1 turns the breaker off) and "
        "NEWSLETTER_BOUNCE_BREAKER_SAMPLE at least 1."
    )
# Through an anymail ESP that can batch (Mailgun, SparkPost, SendGrid), one API call
# sends this many recipients their own copy (merge data); a worker killed mid-call can
# duplicate at most one call's recipients.
NEWSLETTER_ESP_BATCH_SIZE = _read(env.int, "NEWSLETTER_ESP_BATCH_SIZE", default=100)
# The ESP's merge-field syntax as a str.format pattern (e.g. "%recipient.{}%"): empty
# picks it from EMAIL_BACKEND, "off" sends one API call per message.
NEWSLETTER_ESP_MERGE_FIELD_FORMAT: str = env.str("NEWSLETTER_ESP_MERGE_FIELD_FORMAT", default="")
# Issue statistics (docs/newsletter-analytics.md): the opens pixel everywhere (each
# newsletter can also turn it off), and how often buffered clicks and opens are written.
NEWSLETTER_TRACK_OPENS = _read(env.bool, "NEWSLETTER_TRACK_OPENS", default=True)
NEWSLETTER_TRACKING_FLUSH_SECONDS = _read(
    env.float, "NEWSLETTER_TRACKING_FLUSH_SECONDS", default=5.0
)
#: An issue's counters are counted again at most once in this many seconds (0: each flush).
NEWSLETTER_STATS_REFRESH_SECONDS = _read(env.int, "NEWSLETTER_STATS_REFRESH_SECONDS", default=60)

# Beat starts scheduled issues and watches sending ones this often.
NEWSLETTER_TICK_SECONDS = _read(env.float, "NEWSLETTER_TICK_SECONDS", default=10.0)
# On large tables the admin's figures (subscribers per newsletter, donation totals and
# chart) are read from the cache; beat recounts them this often.
ADMIN_FIGURES_REFRESH_SECONDS = _read(env.int, "ADMIN_FIGURES_REFRESH_SECONDS", default=300)
CELERY_BEAT_SCHEDULE = beat_schedule(
    tracking_flush_seconds=NEWSLETTER_TRACKING_FLUSH_SECONDS,
    figures_refresh_seconds=ADMIN_FIGURES_REFRESH_SECONDS,
    tick_seconds=NEWSLETTER_TICK_SECONDS,
    bounce_poll_seconds=(
        _read(env.float, "BOUNCE_POLL_SECONDS", default=60.0)
        if BOUNCE_MAILDIR or BOUNCE_IMAP_URL
        else None
    ),
    # Scheduled articles' pages are purged when they go live: only with a purger.
    go_live_seconds=(
        _read(env.float, "EDGE_GO_LIVE_TICK_SECONDS", default=15.0) if EDGE_PURGER else None
    ),
)

# --- Internationalisation ----------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE: str = env.str("OUTLET_TIME_ZONE", default="America/New_York")
USE_I18N = True
USE_TZ = True

# --- Static and media --------------------------------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "outlet" / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
# Uploaded archive exports (importers/): never under MEDIA_ROOT, they hold drafts and emails.
IMPORTS_ROOT = Path(env.str("IMPORTS_ROOT", default=str(VAR_DIR / "imports")))
if IMPORTS_ROOT.resolve().is_relative_to(MEDIA_ROOT.resolve()):
    # /media/ serves everything under MEDIA_ROOT, an export's drafts and addresses too.
    raise ImproperlyConfigured(
        f"IMPORTS_ROOT ({IMPORTS_ROOT}) is inside MEDIA_ROOT ({MEDIA_ROOT}), which is served "
        "to anyone: set IMPORTS_ROOT to a folder outside it."
    )
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "imports": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(IMPORTS_ROOT), "base_url": None},
    },
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_MAX_AGE = 31536000 if not DEBUG else 0

# --- Security ----------------------------------------------------------------

_stripe_origin = "{0.scheme}://{0.netloc}".format(urlsplit(STRIPE_JS_URL))
# Real Stripe.js calls api.stripe.com and frames js.stripe.com and hooks.stripe.com (3-D
# Secure); localstripe serves all of it from its one origin.
_real_stripe = STRIPE_DIALECT == "current"
_stripe_connect = ["https://api.stripe.com"] if _real_stripe else []
_stripe_frames = ["https://js.stripe.com", "https://hooks.stripe.com"] if _real_stripe else []
# Django adds the nonce only to responses that used one (the admin's import map for the
# body editor); reader pages use none, so their header and bytes are the same for every
# reader and a shared cache can hold them: their scripts and styles are files from 'self'
# (a 'sha256-…' hash would go here for an unavoidable inline block).
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE, _stripe_origin],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:", "https:"],
    "font-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF, _stripe_origin, *_stripe_connect],
    "frame-src": [CSP.SELF, *dict.fromkeys([_stripe_origin, *_stripe_frames])],
    "frame-ancestors": [CSP.SELF],
    "form-action": [CSP.SELF],
    "base-uri": [CSP.SELF],
    "object-src": [CSP.NONE],
}
# A sign-up posted without a token (no JavaScript on a cached page) gets the form back.
CSRF_FAILURE_VIEW = "outlet.newsletters.views.csrf_failure"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Pages that must be framed by our own admin (email previews) say so per view.
X_FRAME_OPTIONS = "SAMEORIGIN" if DEBUG else "DENY"
SESSION_COOKIE_HTTPONLY = True
_https = _site.scheme == "https"
SESSION_COOKIE_SECURE = _read(env.bool, "SESSION_COOKIE_SECURE", default=_https)
CSRF_COOKIE_SECURE = _read(env.bool, "CSRF_COOKIE_SECURE", default=_https)
SECURE_SSL_REDIRECT = _read(env.bool, "SECURE_SSL_REDIRECT", default=_https and not DEBUG)
SECURE_HSTS_SECONDS = _read(
    env.int, "SECURE_HSTS_SECONDS", default=31536000 if _https and not DEBUG else 0
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _read(env.bool, "SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = _read(env.bool, "SECURE_HSTS_PRELOAD", default=False)
# Preloading binds the domain and all its subdomains to HTTPS in browsers for months:
# a decision for whoever owns the domain (SECURE_HSTS_PRELOAD=1), not a default.
SILENCED_SYSTEM_CHECKS = ["security.W021"]
# Probes and Prometheus ask the web processes directly, over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
if OUTLET_BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# X-Forwarded-Host is never trusted (the VCL drops it too): a poisoned host could end up
# in a cached page; every absolute address is built from SITE_URL (core/site_url.py).
USE_X_FORWARDED_HOST = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Metrics (/metrics for Prometheus; outlet/core/metrics/) -------------------

# Who may read /metrics: IP addresses or networks, and bearer tokens as bearer:<token>.
METRICS_ALLOW = metrics_allow_parse(_read(env.list, "METRICS_ALLOW", default=["127.0.0.1", "::1"]))
# prometheus-client's multiprocess mode: every process of the stack (gunicorn workers,
# Celery's pool, beat) writes its counters to files here and /metrics sums them. One
# directory per host, emptied when the stack starts (runstack does; see the README).
# Set before prometheus_client is imported anywhere: it reads the variable on import.
METRICS_DIR = Path(env.str("PROMETHEUS_MULTIPROC_DIR", default=str(VAR_DIR / "metrics")))
METRICS_DIR.mkdir(parents=True, exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(METRICS_DIR)
# Issues whose deliveries /metrics counts by status: every sending or paused one, and
# this many of the most recently started others.
METRICS_RECENT_ISSUES = _read(env.int, "METRICS_RECENT_ISSUES", default=3)

# --- Logging -----------------------------------------------------------------

LOGGING = logging_config(level=env.str("LOG_LEVEL", default="INFO"))
