"""X-Request-ID: kept when sane, made otherwise, echoed, and on every line of the request."""

from __future__ import annotations

import logging

import pytest

from outlet.core.logs.request_id import RequestIdWSGI
from tests.core.log_capture import json_lines, logs_captured

pytestmark = pytest.mark.django_db


def test_a_request_without_an_id_gets_a_new_one_in_the_response(client):
    first = client.get("/healthz")["X-Request-ID"]
    second = client.get("/healthz")["X-Request-ID"]
    assert len(first) == 32 and int(first, 16) >= 0
    assert first != second


@pytest.mark.parametrize(
    "incoming", ["3f2a9c1e-7b44-4d0e-9a51-2f0c8e6d1b77", "Root=1-67891233-abcdef012345678912345678"]
)
def test_a_sane_incoming_id_is_kept_and_echoed(client, incoming):
    assert client.get("/healthz", headers={"X-Request-ID": incoming})["X-Request-ID"] == incoming


@pytest.mark.parametrize(
    "incoming",
    ["", "has space", "<script>", "a" * 129, "reader@example.com", "-starts-with-dash", "é"],
)
def test_an_insane_incoming_id_is_replaced(client, incoming):
    answered = client.get("/healthz", headers={"X-Request-ID": incoming})["X-Request-ID"]
    assert answered != incoming and len(answered) == 32


def test_the_lines_of_a_request_carry_its_id(client):
    from django.urls import reverse

    from tests.factories import NewsletterFactory

    daily = NewsletterFactory()
    with logs_captured() as stream:
        response = client.post(
            reverse("newsletters:index"),
            {"email": "someone@example.com", "newsletters": [daily.pk]},
            headers={"X-Request-ID": "trace-123"},
        )
    assert response["X-Request-ID"] == "trace-123"
    signup = [line for line in json_lines(stream) if "sign-up" in line["message"]]
    assert signup and all(line["request_id"] == "trace-123" for line in signup)
    # Nothing is left bound once the request is answered.
    with logs_captured() as stream:
        logging.getLogger("outlet.after").warning("later")
    assert "request_id" not in json_lines(stream)[0]


def _call(app, **environ) -> dict[str, str]:
    got: dict = {}

    def start_response(status, headers, exc_info=None):
        got.update(headers)

    b"".join(app({"PATH_INFO": "/", "REQUEST_METHOD": "GET", **environ}, start_response))
    return got


def test_the_wsgi_front_gives_answers_made_before_django_an_id():
    def tracking_answer(environ, start_response):  # an answer Django never sees
        logging.getLogger("outlet.front").warning("answered early")
        start_response("302 Found", [("Location", "/"), ("X-Request-ID", "forged")])
        return [b""]

    with logs_captured() as stream:
        headers = _call(RequestIdWSGI(tracking_answer), HTTP_X_REQUEST_ID="edge-42")
    assert headers["X-Request-ID"] == "edge-42"
    assert json_lines(stream)[0]["request_id"] == "edge-42"
    assert len(_call(RequestIdWSGI(tracking_answer))["X-Request-ID"]) == 32


def test_django_behind_the_front_keeps_the_fronts_id(client):
    from outlet.wsgi import application

    headers = _call(
        application,
        PATH_INFO="/healthz",
        SERVER_NAME="localhost",
        SERVER_PORT="80",
        HTTP_HOST="localhost",
        HTTP_X_REQUEST_ID="front-7",
        **{"wsgi.input": __import__("io").BytesIO(), "wsgi.url_scheme": "http"},
    )
    assert headers["X-Request-ID"] == "front-7"
