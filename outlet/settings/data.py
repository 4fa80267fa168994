"""The database, the cache, the shared cache in front (Varnish, a CDN) and Celery."""

from django.core.exceptions import ImproperlyConfigured

from outlet.settings.environment import DEBUG, VAR_DIR, env, read

# --- Data --------------------------------------------------------------------

DATABASES = {
    "default": read(env.db_url, "DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'outlet.sqlite3'}"),
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
    DATABASES["default"]["CONN_MAX_AGE"] = read(env.int, "DATABASE_CONN_MAX_AGE", default=60)
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
    "default": read(env.cache_url, "CACHE_URL", default=f"filecache://{VAR_DIR / 'cache'}"),
}
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    CACHES["default"]["BACKEND"] = "outlet.core.cache.RedisCache"
CACHE_MIDDLEWARE_SECONDS = read(env.int, "CACHE_PAGE_SECONDS", default=300)

# --- Shared cache in front (Varnish, a CDN): see articles/edge.py and core/purgers.py ---

# "varnish" (xkey PURGE), "http" (POST {"keys": [...]}), a dotted path to a Purger
# class, or empty: no purges, and pages keep the browser-only Cache-Control.
EDGE_PURGER: str = env.str("EDGE_PURGER", default="")
EDGE_PURGE_URLS: list[str] = read(env.list, "EDGE_PURGE_URLS", default=[])
EDGE_PURGE_TOKEN: str = env.str("EDGE_PURGE_TOKEN", default="")
if EDGE_PURGER and not EDGE_PURGE_URLS and EDGE_PURGER in ("varnish", "http"):
    raise ImproperlyConfigured("EDGE_PURGER is set: EDGE_PURGE_URLS must name where to purge.")
# How long the shared cache keeps a reader page (s-maxage); 0 sends none.
EDGE_CACHE_SECONDS: int = read(env.int, "EDGE_CACHE_SECONDS", default=3600 if EDGE_PURGER else 0)
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
EDGE_STALE_WHILE_REVALIDATE: int = read(env.int, "EDGE_STALE_WHILE_REVALIDATE", default=30)
EDGE_STALE_IF_ERROR: int = read(env.int, "EDGE_STALE_IF_ERROR", default=86400)
# A purge is sent again this long after the first, for pages whose render began before
# the commit and reached the cache after it: above Varnish's first_byte_timeout (30 s).
EDGE_PURGE_REPEAT_SECONDS: int = read(env.int, "EDGE_PURGE_REPEAT_SECONDS", default=40)
# The surrogate-key header: "xkey" for Varnish; a CDN may want Surrogate-Key or Cache-Tag.
EDGE_KEY_HEADER: str = env.str("EDGE_KEY_HEADER", default="xkey")

# --- Celery ------------------------------------------------------------------

_BROKER_DIR = VAR_DIR / "broker"
CELERY_VISIBILITY_TIMEOUT: int = read(env.int, "CELERY_VISIBILITY_TIMEOUT", default=900)
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
CELERY_DB_REUSE_MAX = read(env.int, "CELERY_DB_REUSE_MAX", default=100)
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
OUTLET_WORKER_HEARTBEAT_SECONDS = read(env.int, "OUTLET_WORKER_HEARTBEAT_SECONDS", default=10)
