"""Static and media files, and the security headers and cookies."""

from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP as _CSP

from outlet.settings.data import OUTLET_BEHIND_PROXY
from outlet.settings.environment import BASE_DIR, DEBUG, VAR_DIR, env, read
from outlet.settings.payments import STRIPE_DIALECT, STRIPE_JS_URL
from outlet.settings.web import SITE_URL

_site = urlsplit(SITE_URL)

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
    "default-src": [_CSP.SELF],
    "script-src": [_CSP.SELF, _CSP.NONCE, _stripe_origin],
    "style-src": [_CSP.SELF, _CSP.NONCE],
    "img-src": [_CSP.SELF, "data:", "https:"],
    "font-src": [_CSP.SELF, "data:"],
    "connect-src": [_CSP.SELF, _stripe_origin, *_stripe_connect],
    "frame-src": [_CSP.SELF, *dict.fromkeys([_stripe_origin, *_stripe_frames])],
    "frame-ancestors": [_CSP.SELF],
    "form-action": [_CSP.SELF],
    "base-uri": [_CSP.SELF],
    "object-src": [_CSP.NONE],
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
SESSION_COOKIE_SECURE = read(env.bool, "SESSION_COOKIE_SECURE", default=_https)
CSRF_COOKIE_SECURE = read(env.bool, "CSRF_COOKIE_SECURE", default=_https)
SECURE_SSL_REDIRECT = read(env.bool, "SECURE_SSL_REDIRECT", default=_https and not DEBUG)
SECURE_HSTS_SECONDS = read(
    env.int, "SECURE_HSTS_SECONDS", default=31536000 if _https and not DEBUG else 0
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = read(env.bool, "SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = read(env.bool, "SECURE_HSTS_PRELOAD", default=False)
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
