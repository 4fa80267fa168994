"""The scrubber: what it redacts and what it leaves readable."""

from __future__ import annotations

import pytest

from outlet.core.logs.scrubbing import sentry_event_scrub, text_scrub

CASES = [
    ("to Jane.Doe+news@Example.co.uk failed", "to [email] failed"),
    (
        "{'reader@example.com': (550, b'<reader@example.com> unknown')}",
        "{'[email]': (550, b'<[email]> unknown')}",
    ),
    ("GET /?e=reader%40example.com", "GET /?e=[email]"),
    ("sk_live_51Habc123XYZ, rk_test_9x, whsec_AbC123", "[secret], [secret], [secret]"),
    ("Authorization: Bearer abc.def-ghi", "Authorization: Bearer [secret]"),
    (
        '"GET /account/sign-in/.eJxT:1u2v3w:AbCdEfGhIjKlMnOpQrStUvWx/ HTTP/1.1" 200',
        '"GET /account/sign-in/[token]/ HTTP/1.1" 200',
    ),
    (
        "/newsletter/unsubscribe/abc123/ and /n/c/1.0.x.4.y",
        "/newsletter/unsubscribe/[token]/ and /n/c/[token]",
    ),
    ("/donate/thanks/tok/?token=s3cr3t&x=1", "/donate/thanks/[token]/?token=[token]&x=1"),
    ("value eyJyIjo0fQ:1tAbCd:Zx9yW8vU7tS6rQ5pO4nM3lK2 signed", "value [token] signed"),
    ("card 4242 4242 4242 4242 ok", "card [card] ok"),
]


@pytest.mark.parametrize(("text", "kept"), CASES)
def test_secrets_are_redacted(text, kept):
    assert text_scrub(text) == kept


@pytest.mark.parametrize(
    "text",
    [
        "issue 12 batch: sent=500 deferred=0 bounced=1 skipped=2",
        "Task donations.donor_email_send[3f2a9c1e-7b44-4d0e-9a51-2f0c8e6d1b77] succeeded",
        "/articles/2026/12/07/a-long-article-slug-about-the-city-budget/",
        "paid at 1733600000000 (pk_test_publishable is public)",
        "Stripe payment_intent.succeeded evt_20a1de43cf804b86a4520ad7: paid",
    ],
)
def test_ordinary_lines_stay_as_they_are(text):
    assert text_scrub(text) == text


def test_a_sentry_event_is_scrubbed_throughout():
    event = {
        "exception": {"values": [{"value": "550 <reader@example.com> refused"}]},
        "breadcrumbs": {"values": [{"message": "key sk_test_abc"}]},
        "request": {
            "url": "https://news.example.org/account/sign-in/tok/",
            "headers": {"Authorization": "Bearer x", "Cookie": "sessionid=1"},
            "cookies": {"sessionid": "1"},
        },
    }
    clean = sentry_event_scrub(event, {})
    assert clean["exception"]["values"][0]["value"] == "550 <[email]> refused"
    assert clean["breadcrumbs"]["values"][0]["message"] == "key [secret]"
    assert clean["request"]["url"].endswith("/sign-in/[token]/")
    assert "cookies" not in clean["request"]
    assert set(clean["request"]["headers"].values()) == {"[secret]"}
