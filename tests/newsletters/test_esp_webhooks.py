"""The email provider's webhooks: only the configured provider's endpoints answer, and
production does not start (and `check --deploy` complains) while they are unsecured."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from django.core import checks

from outlet.newsletters.models import Subscriber, Suppression
from tests.core.test_settings import PRODUCTION_ENV, _manage
from tests.factories import SubscriberFactory

pytestmark = pytest.mark.django_db

PAYLOADS = Path(__file__).parent / "payloads"
AUTH = "Basic " + base64.b64encode(b"anymail:s3cret-webhook").decode()
POSTMARK = "anymail.backends.postmark.EmailBackend"


def post_complaint(client, esp: str, *, auth: str = AUTH):
    payload = json.loads((PAYLOADS / "postmark_spam_complaint.json").read_text())
    return client.post(
        f"/anymail/{esp}/tracking/",
        json.dumps(payload),
        content_type="application/json",
        HTTP_AUTHORIZATION=auth,
    )


@pytest.fixture
def reader(daily):
    payload = json.loads((PAYLOADS / "postmark_spam_complaint.json").read_text())
    return SubscriberFactory(email=payload["Email"], newsletters=[daily])


def test_only_the_configured_providers_endpoints_answer(client, settings, reader):
    settings.EMAIL_BACKEND = POSTMARK
    settings.ANYMAIL = {"WEBHOOK_SECRET": "anymail:s3cret-webhook"}

    for other in ("mailgun", "sendgrid", "sparkpost", "mailjet", "amazon_ses", "brevo"):
        assert post_complaint(client, other).status_code == 404, other
    assert client.post("/anymail/mandrill/").status_code == 404
    assert Suppression.objects.count() == 0

    assert post_complaint(client, "postmark").status_code == 200
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.COMPLAINED


def test_without_a_provider_no_webhook_endpoint_answers(client, settings, reader):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.ANYMAIL = {}

    for esp in ("postmark", "mailgun", "sendgrid"):
        assert post_complaint(client, esp, auth="").status_code == 404
    assert Suppression.objects.count() == 0


def test_the_configured_endpoint_refuses_a_post_without_the_secret(client, settings, reader):
    settings.EMAIL_BACKEND = POSTMARK
    settings.ANYMAIL = {"WEBHOOK_SECRET": "anymail:s3cret-webhook"}

    assert post_complaint(client, "postmark", auth="").status_code == 400
    assert Suppression.objects.count() == 0


def _deploy_errors() -> list[str]:
    found = checks.run_checks(include_deployment_checks=True, tags=[checks.Tags.security])
    return [message.msg for message in found if message.id.startswith("outlet.")]


def test_check_deploy_names_the_missing_webhook_secret(settings):
    settings.EMAIL_BACKEND = POSTMARK
    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "token"}

    errors = _deploy_errors()

    assert len(errors) == 1
    assert "ANYMAIL_WEBHOOK_SECRET" in errors[0]
    assert "/anymail/postmark/" in errors[0]


@pytest.mark.parametrize(
    ("backend", "anymail"),
    [
        (POSTMARK, {"WEBHOOK_SECRET": "anymail:s3cret-webhook"}),
        ("anymail.backends.mailgun.EmailBackend", {"MAILGUN_WEBHOOK_SIGNING_KEY": "key"}),
        ("django.core.mail.backends.smtp.EmailBackend", {}),
        ("anymail.backends.test.EmailBackend", {}),
    ],
)
def test_check_deploy_is_quiet_when_the_webhooks_are_secured_or_absent(settings, backend, anymail):
    settings.EMAIL_BACKEND = backend
    settings.ANYMAIL = anymail

    assert _deploy_errors() == []


def test_production_refuses_to_start_with_an_esp_and_no_webhook_secret():
    env = {**PRODUCTION_ENV, "EMAIL_BACKEND": POSTMARK, "ANYMAIL_POSTMARK_SERVER_TOKEN": "token"}
    del env["EMAIL_URL"]

    result = _manage("check", **env)

    assert result.returncode != 0
    assert "ANYMAIL_WEBHOOK_SECRET" in result.stderr


def test_production_starts_with_an_esp_and_its_signing_key():
    env = {
        **PRODUCTION_ENV,
        "EMAIL_BACKEND": "anymail.backends.mailgun.EmailBackend",
        "ANYMAIL_MAILGUN_API_KEY": "key",
        "ANYMAIL_MAILGUN_WEBHOOK_SIGNING_KEY": "signing-key",
    }
    del env["EMAIL_URL"]

    result = _manage("check", "--deploy", "--fail-level", "WARNING", **env)

    assert result.returncode == 0, result.stdout + result.stderr
