"""Outgoing mail (SMTP or an ESP through anymail), DKIM signing, and the bounces that come back."""

import os

from django.core.exceptions import ImproperlyConfigured

from outlet.anymail_environment import anymail_from_environment
from outlet.core.dkim_config import dkim_alignment_check, dkim_key_read
from outlet.settings.environment import DEBUG, VAR_DIR, env, read

# --- Email -------------------------------------------------------------------

if not DEBUG and not (env.str("EMAIL_URL", default="") or env.str("EMAIL_BACKEND", default="")):
    # No silent console fallback: it would print receipts, sign-in links and addresses to logs.
    raise ImproperlyConfigured(
        "EMAIL_URL (e.g. smtp+tls://user:pass@smtp.example.org:587) or EMAIL_BACKEND "
        "(an anymail backend) is required when DEBUG is off."
    )
_email = read(env.email_url, "EMAIL_URL", default="smtp://127.0.0.1:1025")
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
EMAIL_TIMEOUT = read(env.int, "EMAIL_TIMEOUT", default=20)
DEFAULT_FROM_EMAIL: str = env.str("DEFAULT_FROM_EMAIL", default="The Outlet <hello@outlet.test>")
SERVER_EMAIL: str = env.str("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)
# Shared secret anymail checks on its tracking and inbound webhooks (/anymail/<esp>/...),
# as "user:password"; ESPs that sign webhooks take their own keys (see anymail's docs).
ANYMAIL = anymail_from_environment(
    os.environ,
    boolean=lambda name: read(env.bool, name),
    number=lambda name: read(env.float, name),
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
if DKIM_PRIVATE_KEY and EMAIL_BACKEND == "outlet.core.smtp_backend.EmailBackend":
    # Only what outlet signs (its SMTP backend): an ESP signs for itself.
    dkim_alignment_check(
        dkim_domain=DKIM_DOMAIN,
        senders={"DEFAULT_FROM_EMAIL": DEFAULT_FROM_EMAIL, "SERVER_EMAIL": SERVER_EMAIL},
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
BOUNCE_KEEP: bool = read(env.bool, "BOUNCE_KEEP", default=True)
# A return path's token is refused once older than this (its day is signed into it).
BOUNCE_TOKEN_MAX_AGE_DAYS: int = read(env.int, "BOUNCE_TOKEN_MAX_AGE_DAYS", default=60)
# A Maildir message claimed by a poller that died is taken over after this many seconds.
BOUNCE_CLAIM_SECONDS: int = read(env.int, "BOUNCE_CLAIM_SECONDS", default=600)
# Shorter than one message's intake (a slow database, a row lock) and a live claim is
# taken from its poller: both would read it, and only the database's unique key keeps
# the second from acting.
if BOUNCE_TOKEN_MAX_AGE_DAYS < 1 or BOUNCE_CLAIM_SECONDS < 60:
    raise ImproperlyConfigured(
        "BOUNCE_TOKEN_MAX_AGE_DAYS must be at least 1 and BOUNCE_CLAIM_SECONDS at least 60."
    )
if (BOUNCE_MAILDIR or BOUNCE_IMAP_URL) and not BOUNCE_DOMAIN:
    # No copy would carry a token: every bounce polled would be refused as forged, and a
    # forged message keeps nothing of its content.
    raise ImproperlyConfigured(
        f"{'BOUNCE_MAILDIR' if BOUNCE_MAILDIR else 'BOUNCE_IMAP_URL'} is set but BOUNCE_DOMAIN "
        "is not: set BOUNCE_DOMAIN to the domain of the return paths that mailbox receives."
    )
if BOUNCE_IMAP_URL and not BOUNCE_IMAP_URL.startswith(("imaps://", "imap://")):
    raise ImproperlyConfigured("BOUNCE_IMAP_URL must start with imaps:// or imap:// (STARTTLS).")
