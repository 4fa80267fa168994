"""The outlet's identity, newsletters (audience and sending) and beat's schedule."""

from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from outlet.beat_schedule import beat_schedule
from outlet.settings.data import EDGE_PURGER
from outlet.settings.environment import DEBUG, env, read
from outlet.settings.mail import BOUNCE_IMAP_URL, BOUNCE_MAILDIR
from outlet.settings.web import SITE_URL

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
NEWSLETTER_CONFIRM_MAX_AGE = read(env.int, "NEWSLETTER_CONFIRM_MAX_AGE", default=7 * 24 * 3600)
NEWSLETTER_CONFIRM_RESEND_SECONDS = read(
    env.int, "NEWSLETTER_CONFIRM_RESEND_SECONDS", default=15 * 60
)
NEWSLETTER_PREFERENCES_MAX_AGE = read(
    env.int, "NEWSLETTER_PREFERENCES_MAX_AGE", default=365 * 24 * 3600
)
# Sign-up attempts allowed per client IP and per address in each window.
NEWSLETTER_SIGNUP_RATE_PER_IP = read(env.int, "NEWSLETTER_SIGNUP_RATE_PER_IP", default=10)
NEWSLETTER_SIGNUP_RATE_PER_EMAIL = read(env.int, "NEWSLETTER_SIGNUP_RATE_PER_EMAIL", default=5)
NEWSLETTER_SIGNUP_RATE_WINDOW = read(env.int, "NEWSLETTER_SIGNUP_RATE_WINDOW", default=3600)
# Soft bounces in a row after which an address is suppressed.
NEWSLETTER_SOFT_BOUNCE_LIMIT = read(env.int, "NEWSLETTER_SOFT_BOUNCE_LIMIT", default=3)
# The mailto: half of List-Unsubscribe; empty to offer only the https link.
NEWSLETTER_UNSUBSCRIBE_MAILTO: str = env.str(
    "NEWSLETTER_UNSUBSCRIBE_MAILTO", default=f"unsubscribe@{urlsplit(SITE_URL).hostname}"
)
# CSV imports larger than this many rows run in a Celery task.
NEWSLETTER_IMPORT_INLINE_ROWS = read(env.int, "NEWSLETTER_IMPORT_INLINE_ROWS", default=2000)
# A finished import's stored rows (the addresses in its file, its refused addresses) are
# deleted this many days after it finished; its counts stay.
NEWSLETTER_IMPORT_RETENTION_DAYS = read(env.int, "NEWSLETTER_IMPORT_RETENTION_DAYS", default=30)

# --- Newsletters (sending issues) ---------------------------------------------

# Deliveries one batch task claims and sends over one SMTP connection.
NEWSLETTER_BATCH_SIZE = read(env.int, "NEWSLETTER_BATCH_SIZE", default=500)
# Batch tasks kept in flight per sending issue (about the bulk workers' total concurrency).
NEWSLETTER_SEND_LANES = read(env.int, "NEWSLETTER_SEND_LANES", default=4)
# How long a claimed batch is a worker's; after that a dead worker's rows are claimed again.
NEWSLETTER_LEASE_SECONDS = read(env.int, "NEWSLETTER_LEASE_SECONDS", default=300)
# Messages per second across all workers (0: no limit); counted in the cache, so the
# limit is global with a shared cache (Redis) and per process with locmem.
NEWSLETTER_RATE_LIMIT_PER_SECOND = read(env.int, "NEWSLETTER_RATE_LIMIT_PER_SECOND", default=0)
# Temporary failures (4xx, dropped connections) are retried this many times in all,
# waiting NEWSLETTER_RETRY_SECONDS, then twice that, and so on.
NEWSLETTER_MAX_ATTEMPTS = read(env.int, "NEWSLETTER_MAX_ATTEMPTS", default=5)
NEWSLETTER_RETRY_SECONDS = read(env.int, "NEWSLETTER_RETRY_SECONDS", default=60)
# A send paused because the mail server was unreachable is retried after this long.
NEWSLETTER_SMTP_DOWN_RETRY_SECONDS = read(env.int, "NEWSLETTER_SMTP_DOWN_RETRY_SECONDS", default=60)
# The bounce-rate breaker (docs/sending-faults.md): once a window of this many messages
# has been judged by the servers, more hard bounces ("no such mailbox") than this share
# of it pause the issue for the editor and suppress nobody (a relay refusing everyone
# is not a list of dead addresses); at or below it, the window's bounces are suppressed.
# A rate of 1 or more turns the breaker off (every hard bounce suppresses at once).
NEWSLETTER_BOUNCE_BREAKER_RATE = read(env.float, "NEWSLETTER_BOUNCE_BREAKER_RATE", default=0.1)
NEWSLETTER_BOUNCE_BREAKER_SAMPLE = read(env.int, "NEWSLETTER_BOUNCE_BREAKER_SAMPLE", default=200)
if NEWSLETTER_BOUNCE_BREAKER_RATE <= 0 or NEWSLETTER_BOUNCE_BREAKER_SAMPLE < 1:
    raise ImproperlyConfigured(
        "NEWSLETTER_BOUNCE_BREAKER_RATE must be above 0 (1 turns the breaker off) and "
        "NEWSLETTER_BOUNCE_BREAKER_SAMPLE at least 1."
    )
# Through an anymail ESP that can batch (Mailgun, SparkPost, SendGrid), one API call
# sends this many recipients their own copy (merge data); a worker killed mid-call can
# duplicate at most one call's recipients.
NEWSLETTER_ESP_BATCH_SIZE = read(env.int, "NEWSLETTER_ESP_BATCH_SIZE", default=100)
# The ESP's merge-field syntax as a str.format pattern (e.g. "%recipient.{}%"): empty
# picks it from EMAIL_BACKEND, "off" sends one API call per message.
NEWSLETTER_ESP_MERGE_FIELD_FORMAT: str = env.str("NEWSLETTER_ESP_MERGE_FIELD_FORMAT", default="")
# Issue statistics (docs/newsletter-analytics.md): the opens pixel everywhere (each
# newsletter can also turn it off), and how often buffered clicks and opens are written.
NEWSLETTER_TRACK_OPENS = read(env.bool, "NEWSLETTER_TRACK_OPENS", default=True)
NEWSLETTER_TRACKING_FLUSH_SECONDS = read(
    env.float, "NEWSLETTER_TRACKING_FLUSH_SECONDS", default=5.0
)
#: An issue's counters are counted again at most once in this many seconds (0: each flush).
NEWSLETTER_STATS_REFRESH_SECONDS = read(env.int, "NEWSLETTER_STATS_REFRESH_SECONDS", default=60)

# Beat starts scheduled issues and watches sending ones this often.
NEWSLETTER_TICK_SECONDS = read(env.float, "NEWSLETTER_TICK_SECONDS", default=10.0)
# On large tables the admin's figures (subscribers per newsletter, donation totals and
# chart) are read from the cache; beat recounts them this often.
ADMIN_FIGURES_REFRESH_SECONDS = read(env.int, "ADMIN_FIGURES_REFRESH_SECONDS", default=300)
CELERY_BEAT_SCHEDULE = beat_schedule(
    tracking_flush_seconds=NEWSLETTER_TRACKING_FLUSH_SECONDS,
    figures_refresh_seconds=ADMIN_FIGURES_REFRESH_SECONDS,
    tick_seconds=NEWSLETTER_TICK_SECONDS,
    bounce_poll_seconds=(
        read(env.float, "BOUNCE_POLL_SECONDS", default=60.0)
        if BOUNCE_MAILDIR or BOUNCE_IMAP_URL
        else None
    ),
    # Scheduled articles' pages are purged when they go live: only with a purger.
    go_live_seconds=(
        read(env.float, "EDGE_GO_LIVE_TICK_SECONDS", default=15.0) if EDGE_PURGER else None
    ),
)
