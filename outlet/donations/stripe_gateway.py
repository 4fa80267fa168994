"""
The one door to Stripe. Every call to Stripe (or to localstripe in development)
goes through this module, with one configured client on STRIPE_API_BASE.
"""

from __future__ import annotations

import requests
from django.conf import settings
from django.urls import reverse

LOCALSTRIPE_WEBHOOK_ID = "outlet"


def localstripe_webhook_register(*, site_url: str) -> None:
    """Point localstripe's webhooks at our endpoint, signed with our secret.

    Only for localstripe (development and tests): real Stripe's endpoints are set
    in its dashboard.
    """
    response = requests.post(
        f"{settings.STRIPE_API_BASE}/_config/webhooks/{LOCALSTRIPE_WEBHOOK_ID}",
        data={
            "url": site_url.rstrip("/") + reverse("donations:webhook"),
            "secret": settings.STRIPE_WEBHOOK_SECRET,
        },
        timeout=10,
    )
    response.raise_for_status()
