"""Production refuses unsafe settings; `check --deploy` is clean when configured properly."""

import os
import secrets
import subprocess
import sys

from django.conf import settings

PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": secrets.token_urlsafe(64),
    "SITE_URL": "https://news.example.org",
    "STRIPE_SECRET_KEY": "sk_test_example",
    "STRIPE_PUBLISHABLE_KEY": "pk_test_example",
    "STRIPE_WEBHOOK_SECRET": "whsec_example",
    "OUTLET_POSTAL_ADDRESS": "1 Press Row, Springfield",
    "EMAIL_URL": "smtp://mail.example.org:587",
    "CACHE_URL": "rediscache://127.0.0.1:6379/1",
}


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    inherited_only_by_tests = {"DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE", "STRIPE_DIALECT"}
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in PRODUCTION_ENV and k not in inherited_only_by_tests
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_deploy_is_clean_in_production_shape():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION_ENV)

    assert result.returncode == 0, result.stdout + result.stderr


def test_missing_secret_key_stops_startup_naming_it():
    env = {**PRODUCTION_ENV}
    del env["SECRET_KEY"]

    result = _manage("check", **env)

    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_default_secret_key_is_refused_in_production():
    result = _manage("check", **{**PRODUCTION_ENV, "SECRET_KEY": "django-insecure-" + "a" * 50})

    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_live_stripe_key_needs_live_mode_on_purpose():
    refused = _manage("check", **{**PRODUCTION_ENV, "STRIPE_SECRET_KEY": "sk_live_abc"})
    allowed = _manage(
        "check", **{**PRODUCTION_ENV, "STRIPE_SECRET_KEY": "sk_live_abc", "STRIPE_LIVE_MODE": "1"}
    )

    assert refused.returncode != 0
    assert "STRIPE_LIVE_MODE" in refused.stderr
    assert allowed.returncode == 0, allowed.stderr


def test_production_refuses_the_localstripe_dialect():
    result = _manage("check", **{**PRODUCTION_ENV, "STRIPE_DIALECT": "localstripe"})

    assert result.returncode != 0
    assert "STRIPE_DIALECT" in result.stderr


def test_production_refuses_console_mail_and_a_per_process_cache_by_default():
    no_mail = {k: v for k, v in PRODUCTION_ENV.items() if k != "EMAIL_URL"}
    no_cache = {k: v for k, v in PRODUCTION_ENV.items() if k != "CACHE_URL"}

    mail_result = _manage("check", **no_mail)
    cache_result = _manage("check", **no_cache)

    assert mail_result.returncode != 0
    assert "EMAIL_URL" in mail_result.stderr
    assert cache_result.returncode != 0
    assert "CACHE_URL" in cache_result.stderr


def test_malformed_variable_is_named():
    result = _manage("check", **{**PRODUCTION_ENV, "DATABASE_URL": "nonsense-without-scheme"})

    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr


def test_secrets_never_appear_in_startup_errors():
    for broken in ({"STRIPE_SECRET_KEY": "sk_live_topsecretvalue"}, {"SECRET_KEY": "short"}):
        env = {**PRODUCTION_ENV, "STRIPE_WEBHOOK_SECRET": "whsec_topsecretvalue", **broken}

        result = _manage("check", **env)

        assert result.returncode != 0
        assert "topsecretvalue" not in result.stderr + result.stdout
        assert "short" not in result.stderr.replace("shorter", "")


def test_a_shared_cache_purger_needs_the_proxy_setting_in_production():
    """Behind Varnish every request comes from Varnish: without OUTLET_BEHIND_PROXY all
    readers would share one rate-limit bucket."""
    edge = {"EDGE_PURGER": "varnish", "EDGE_PURGE_URLS": "http://10.0.0.5:6091/"}

    refused = _manage("check", **PRODUCTION_ENV, **edge)
    accepted = _manage("check", **PRODUCTION_ENV, **edge, OUTLET_BEHIND_PROXY="1")

    assert refused.returncode != 0 and "OUTLET_BEHIND_PROXY" in refused.stderr
    assert accepted.returncode == 0, accepted.stderr


def test_shared_cache_seconds_without_a_purger_are_refused_in_production():
    """Pages a shared cache keeps for an hour with nobody to purge them: a takedown would
    stay up for that hour."""
    result = _manage("check", **PRODUCTION_ENV, EDGE_CACHE_SECONDS="3600")

    assert result.returncode != 0 and "EDGE_CACHE_SECONDS" in result.stderr


def _anymail_settings(**env: str) -> subprocess.CompletedProcess:
    code = "from django.conf import settings; print(settings.ANYMAIL)"
    return _manage("shell", "-c", code, DEBUG="1", **env)


def test_anymail_variables_are_parsed_by_type_so_false_means_false():
    result = _anymail_settings(
        ANYMAIL_DEBUG_API_REQUESTS="false",
        ANYMAIL_REQUESTS_TIMEOUT="7.5",
        ANYMAIL_POSTMARK_SERVER_TOKEN="server-token",
    )

    assert result.returncode == 0, result.stderr
    assert "'DEBUG_API_REQUESTS': False" in result.stdout
    assert "'REQUESTS_TIMEOUT': 7.5" in result.stdout
    assert "'POSTMARK_SERVER_TOKEN': 'server-token'" in result.stdout


def test_an_unknown_anymail_variable_stops_startup_naming_it():
    result = _anymail_settings(ANYMAIL_DEBUG_API_REQUEST="1")

    assert result.returncode != 0
    assert "ANYMAIL_DEBUG_API_REQUEST" in result.stderr


def _csp(**env: str) -> str:
    code = "from django.conf import settings; print(settings.SECURE_CSP)"
    result = _manage("shell", "-c", code, **env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_real_stripe_js_may_reach_its_api_and_3d_secure_frames_in_production():
    csp = _csp(**PRODUCTION_ENV)
    assert "https://api.stripe.com" in csp and "https://hooks.stripe.com" in csp

    local = _csp(DEBUG="1")
    assert "api.stripe.com" not in local and "hooks.stripe.com" not in local


def test_production_refuses_a_long_lived_sign_in_link():
    result = _manage("check", **{**PRODUCTION_ENV, "READER_SIGN_IN_MAX_AGE": "86400"})

    assert result.returncode != 0
    assert "READER_SIGN_IN_MAX_AGE" in result.stderr


def test_archive_exports_under_the_served_media_folder_are_refused(tmp_path):
    # /media/ serves all of MEDIA_ROOT; exports hold drafts and authors' addresses.
    media = tmp_path / "media"
    env = {**PRODUCTION_ENV, "MEDIA_ROOT": str(media), "IMPORTS_ROOT": str(media / "imports")}

    result = _manage("check", **env)

    assert result.returncode != 0
    assert "IMPORTS_ROOT" in result.stderr
    assert _manage("check", **{**env, "IMPORTS_ROOT": str(tmp_path / "imports")}).returncode == 0
