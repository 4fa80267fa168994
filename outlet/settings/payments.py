"""Stripe, donations and reader accounts."""

from django.core.exceptions import ImproperlyConfigured

from outlet.settings.environment import DEBUG, env, read

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
STRIPE_LIVE_MODE: bool = read(env.bool, "STRIPE_LIVE_MODE", default=False)
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
DONATION_PRESETS: list[int] = read(
    env.list, "DONATION_PRESETS", cast=int, default=[1000, 2500, 5000, 10000]
)
DONATION_MIN_AMOUNT: int = read(env.int, "DONATION_MIN_AMOUNT", default=300)
DONATION_MAX_AMOUNT: int = read(env.int, "DONATION_MAX_AMOUNT", default=1_000_000)
# "Cover the fee" grosses the gift up so that, after PERCENT % + FIXED minor units, the
# newsroom receives the chosen amount.
DONATION_FEE_PERCENT: float = read(env.float, "DONATION_FEE_PERCENT", default=2.9)
DONATION_FEE_FIXED: int = read(env.int, "DONATION_FEE_FIXED", default=30)
DONATION_TAX_STATEMENT: str = env.str(
    "DONATION_TAX_STATEMENT",
    default="No goods or services were provided in exchange for this contribution. "
    "Please keep this receipt for your tax records.",
)
# Reader accounts (/account/): a sign-in link works READER_SIGN_IN_MAX_AGE seconds, once;
# the session it opens lasts READER_SESSION_AGE; a link to confirm a new address works
# READER_EMAIL_CHANGE_MAX_AGE. Links per hour: per address from one IP, per address from
# everywhere, per IP.
READER_SIGN_IN_MAX_AGE: int = read(env.int, "READER_SIGN_IN_MAX_AGE", default=900)
READER_SESSION_AGE: int = read(env.int, "READER_SESSION_AGE", default=4 * 3600)
READER_EMAIL_CHANGE_MAX_AGE: int = read(env.int, "READER_EMAIL_CHANGE_MAX_AGE", default=86400)
READER_LINKS_PER_HOUR: int = read(env.int, "READER_LINKS_PER_HOUR", default=3)
READER_LINKS_PER_ADDRESS_PER_HOUR: int = read(
    env.int, "READER_LINKS_PER_ADDRESS_PER_HOUR", default=10
)
# Nothing passes this, not even a first request from a new IP (which passes the cap above).
READER_LINKS_PER_ADDRESS_CEILING: int = read(
    env.int, "READER_LINKS_PER_ADDRESS_CEILING", default=20
)
READER_LINKS_PER_IP_PER_HOUR: int = read(env.int, "READER_LINKS_PER_IP_PER_HOUR", default=20)
if not DEBUG and not 60 <= READER_SIGN_IN_MAX_AGE <= 3600:
    # A sign-in link is a password sent by email: minutes, not days.
    raise ImproperlyConfigured("READER_SIGN_IN_MAX_AGE must be between 60 and 3600 seconds.")
# Payment attempts allowed per window, per client IP and per email address (card testing).
DONATION_RATE_LIMIT_PER_IP: int = read(env.int, "DONATION_RATE_LIMIT_PER_IP", default=20)
DONATION_RATE_LIMIT_PER_EMAIL: int = read(env.int, "DONATION_RATE_LIMIT_PER_EMAIL", default=8)
DONATION_RATE_LIMIT_WINDOW: int = read(env.int, "DONATION_RATE_LIMIT_WINDOW", default=3600)
# A checkout that never reached Stripe's charge step is marked abandoned after this long.
DONATION_CHECKOUT_EXPIRY_HOURS: int = read(env.int, "DONATION_CHECKOUT_EXPIRY_HOURS", default=24)
# Which payment methods the donate page offers (Payment Element, deferred intents). Empty:
# whatever the Stripe dashboard switches on (automatic payment methods), or the named
# payment method configuration; a list (card,link,sepa_debit) is an allow-list instead.
DONATION_PAYMENT_METHOD_TYPES: list[str] = read(
    env.list, "DONATION_PAYMENT_METHOD_TYPES", default=[]
)
STRIPE_PAYMENT_METHOD_CONFIGURATION: str = env.str(
    "STRIPE_PAYMENT_METHOD_CONFIGURATION", default=""
)
