"""The email provider's webhook endpoints (/anymail/<esp>/tracking/, .../inbound/): only
the configured provider's, and never open to anyone.

`anymail.urls` mounts every provider's endpoints, and anymail only warns when they are
unsecured: anyone could then post "complained" for any address and suppress it (or
block, by its digest, one that never signed up). Here only the endpoints of the ESP that
EMAIL_BACKEND names answer; with DEBUG off outlet/settings/ refuses to start without a secret
those endpoints check, and `check --deploy` says the same (`esp_webhooks_check`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_ANYMAIL_BACKEND = re.compile(r"anymail\.backends\.(?P<esp>[a-z_]+)\.EmailBackend")

#: anymail backends that are no provider and receive no webhooks.
_NOT_A_PROVIDER = {"test", "console"}

#: Providers whose webhooks anymail verifies by signature, and the ANYMAIL key that turns
#: that on. Every provider also takes the shared basic-auth WEBHOOK_SECRET.
SIGNING_KEYS = {
    "mailgun": "MAILGUN_WEBHOOK_SIGNING_KEY",
    "mandrill": "MANDRILL_WEBHOOK_KEY",
    "postal": "POSTAL_WEBHOOK_KEY",
    "mailersend": "MAILERSEND_SIGNING_SECRET",
    "mailtrap": "MAILTRAP_TRACKING_SECRET",
    "resend": "RESEND_SIGNING_SECRET",
    "sendgrid": "SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY",
}


def esp_configured(*, email_backend: str) -> str | None:
    """The anymail provider EMAIL_BACKEND sends through ("postmark"), or None."""
    match = _ANYMAIL_BACKEND.fullmatch(email_backend)
    if match is None or match["esp"] in _NOT_A_PROVIDER:
        return None
    return match["esp"]


def esp_webhook_problem(*, email_backend: str, anymail: Mapping[str, Any]) -> str | None:
    """Why the configured provider's webhooks would accept anyone's posts, in a sentence
    naming the variable to set; None when they are secured or there is no provider."""
    esp = esp_configured(email_backend=email_backend)
    if esp is None or anymail.get("WEBHOOK_SECRET"):
        return None
    key = SIGNING_KEYS.get(esp)
    if key and anymail.get(key):
        return None
    remedy = "ANYMAIL_WEBHOOK_SECRET (user:password, also given in the webhook URL)"
    if key:
        remedy += f" or ANYMAIL_{key}"
    return (
        f"EMAIL_BACKEND sends through {esp}, whose webhooks (/anymail/{esp}/...) would "
        f"accept anyone's bounces and complaints: set {remedy}."
    )


def esp_webhook(request, path: str):
    """Hand /anymail/<path> to anymail's view for it, if it is the configured provider's."""
    from anymail import urls as anymail_urls
    from django.conf import settings
    from django.http import Http404

    esp = esp_configured(email_backend=settings.EMAIL_BACKEND)
    if esp is None or not path.startswith(f"{esp}/"):
        raise Http404("No such webhook.")
    for pattern in anymail_urls.urlpatterns:
        match = pattern.resolve(path)
        if match is not None:
            return match.func(request, *match.args, **match.kwargs)
    raise Http404("No such webhook.")


esp_webhook.csrf_exempt = True  # type: ignore[attr-defined]  # anymail's views check their own secret


def esp_webhooks_check(app_configs=None, **kwargs) -> list:
    """`check --deploy`: the provider's webhooks are secured (registered in apps.py)."""
    from django.conf import settings
    from django.core.checks import Error

    problem = esp_webhook_problem(email_backend=settings.EMAIL_BACKEND, anymail=settings.ANYMAIL)
    return [Error(problem, id="outlet.E001")] if problem else []
