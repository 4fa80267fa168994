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
    # Addresses Django's EmailValidator accepts: an apostrophe, an accented local part,
    # an internationalised domain.
    ("to o'brien@example.com", "to [email]"),
    ("to josé.núñez@example.es and reader@bücher.example", "to [email] and [email]"),
    # A password in a URL (DATABASE_URL, EMAIL_URL, BOUNCE_IMAP_URL, the broker).
    (
        "could not connect: postgres://outlet:hunter2@db:5432/outlet",
        "could not connect: postgres://outlet:[secret]@db:5432/outlet",
    ),
    ("imaps://bounces:pa%40ss@localhost:993/INBOX", "imaps://bounces:[secret]@localhost:993/INBOX"),
    ("redis://:hunter2@127.0.0.1:6379/0", "redis://:[secret]@127.0.0.1:6379/0"),
    ("smtp://apikey:SG.x-y_z@smtp.example.com:587", "smtp://apikey:[secret]@smtp.example.com:587"),
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


@pytest.mark.parametrize("run", ["a" * 200_000, "a." * 100_000, "1" * 200_000, "a-" * 100_000])
def test_a_hostile_long_line_is_scrubbed_in_linear_time(run):
    """A 4 KB request path took a second per line (a pattern rescanned the run from each
    of its characters), 20 KB half a minute: anyone could stall a worker with long 404s.
    Not a benchmark: linear work finishes 200 KB at once, quadratic work takes an hour,
    and the alarm only stops a hung test."""
    import signal

    def hung(signum, frame):
        raise TimeoutError("text_scrub is not linear in the line's length")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(30)
    try:
        assert text_scrub(f"Not Found: /{run}/") == f"Not Found: /{run}/"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_extras_that_are_not_strings_are_scrubbed_too():
    """Django's request lines carry the request object: the JSON formatter prints its
    repr, path and query included (a sign-in token, an address in a query)."""
    import logging

    from django.test import RequestFactory

    from outlet.core.logs.scrubbing import ScrubFilter

    request = RequestFactory().get("/account/sign-in/tok3n-s3cret/?e=reader@example.com")
    record = logging.makeLogRecord(
        {
            "msg": "Not Found",
            "request": request,
            "status_code": 404,
            "payload": b"to reader@example.com",
            "refused": {"reader@example.com": (550, "no")},
        }
    )
    clean = ScrubFilter().filter(record)
    assert clean.request == "<WSGIRequest: GET '/account/sign-in/[token]/?e=[email]'>"
    assert clean.status_code == 404
    assert clean.payload == "to [email]"
    assert clean.refused == {"[email]": (550, "no")}
    assert record.request is request  # other handlers keep the original


def test_a_named_tuple_extra_is_scrubbed_not_a_crash_of_the_caller():
    """A filter's exception is raised in the code that logged (logging does not catch
    it), so the extras' scrubbing must take any shape."""
    import logging
    from collections import namedtuple

    from outlet.core.logs.scrubbing import ScrubFilter

    Refusal = namedtuple("Refusal", "address code")
    record = logging.makeLogRecord({"msg": "x", "refusal": Refusal("a@example.com", 550)})
    assert ScrubFilter().filter(record).refusal == Refusal("[email]", 550)
