"""Secrets, hosts, applications, middleware and templates."""

from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from outlet.articles.editor_extensions import PROSE_EDITOR_EXTENSIONS
from outlet.settings.environment import BASE_DIR, DEBUG, env, read

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

ALLOWED_HOSTS: list[str] = read(
    env.list,
    "ALLOWED_HOSTS",
    default=[_site.hostname, "127.0.0.1", "localhost", "[::1]"] if DEBUG else [_site.hostname],
)
CSRF_TRUSTED_ORIGINS: list[str] = read(
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
    # The request's id on every line logged while it runs, echoed as X-Request-ID
    # (outlet/core/logs/request_id.py; wsgi.py's front binds it first in production).
    "outlet.core.logs.request_id.RequestIdMiddleware",
    # Request counts and latency by view for /metrics, around everything else (pages the
    # WSGI page cache answers in front of Django are counted there, as "page_cache").
    "outlet.core.metrics.middleware.RequestMetricsMiddleware",
    # First, so a cached public page skips the rest; it stores pages after all the others ran.
    "outlet.articles.caching.PageCacheMiddleware",
    # The language of a page is in its address only (/en/...), never a cookie or header.
    "outlet.core.language.UrlLanguageMiddleware",
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
