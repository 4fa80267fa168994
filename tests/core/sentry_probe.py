"""Run as a child process by test_sentry.py: a view raises, with whatever SENTRY_DSN the
environment holds, and the process says whether sentry_sdk was ever imported."""

from __future__ import annotations

import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outlet.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.urls import path  # noqa: E402

ADDRESS = os.environ.get("PROBE_ADDRESS", "")


def broken(request, token):
    raise RuntimeError(f"could not mail {ADDRESS} with key {settings.STRIPE_SECRET_KEY}")


urlpatterns = [path("broken/<str:token>/", broken)]

if __name__ == "__main__":
    with override_settings(ROOT_URLCONF="__main__", ALLOWED_HOSTS=["testserver"]):
        response = Client(raise_request_exception=False).get(
            f"/broken/sign-in-token-value/?email={ADDRESS}", headers={"Cookie": "sessionid=abc"}
        )
    print(f"status={response.status_code}")
    print(f"sentry_sdk imported={'sentry_sdk' in sys.modules}")
    if "sentry_sdk" in sys.modules:
        import sentry_sdk

        sentry_sdk.flush(timeout=10)
