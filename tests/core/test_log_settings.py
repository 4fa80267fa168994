"""LOG_FORMAT and the Sentry variables: production's defaults, and bad values named."""

from __future__ import annotations

from tests.core.test_settings import PRODUCTION_ENV, _manage

SHOW = "from django.conf import settings; print(settings.LOG_FORMAT, settings.SENTRY_DSN == '')"


def test_production_logs_json_and_a_laptop_readable_lines_by_default():
    assert _manage("shell", "--no-imports", "-c", SHOW, **PRODUCTION_ENV).stdout.split() == [
        "json",
        "True",
    ]
    laptop = {**PRODUCTION_ENV, "DEBUG": "1"}
    assert _manage("shell", "--no-imports", "-c", SHOW, **laptop).stdout.split() == ["text", "True"]
    chosen = {**PRODUCTION_ENV, "LOG_FORMAT": "text"}
    assert _manage("shell", "--no-imports", "-c", SHOW, **chosen).stdout.split() == ["text", "True"]


def test_an_unknown_log_format_stops_startup_naming_it():
    result = _manage("check", **{**PRODUCTION_ENV, "LOG_FORMAT": "xml"})
    assert result.returncode != 0
    assert "LOG_FORMAT" in result.stderr


def test_a_malformed_traces_rate_stops_startup_naming_it():
    env = {**PRODUCTION_ENV, "SENTRY_DSN": "http://key@127.0.0.1:9/1"}
    result = _manage("check", **{**env, "SENTRY_TRACES_SAMPLE_RATE": "often"})
    assert result.returncode != 0
    assert "SENTRY_TRACES_SAMPLE_RATE" in result.stderr
