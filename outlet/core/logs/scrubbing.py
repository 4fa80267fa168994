"""Redact what must never be written down: addresses, Stripe secrets, card numbers and
the tokens in sign-in, confirmation and unsubscribe links.

Defence in depth: outlet's own lines name readers by id or address digest and never
log keys; this catches a library's message, an exception's text (an SMTP refusal
quoting the recipient, a database error quoting the row) or a careless line. One
function, `text_scrub`, serves the log handlers (`ScrubFilter`) and Sentry's
`before_send` (`sentry_event_scrub`).
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

REDACTED_EMAIL = "[email]"
REDACTED_SECRET = "[secret]"  # noqa: S105 (what replaces one)
REDACTED_TOKEN = "[token]"  # noqa: S105
REDACTED_CARD = "[card]"

# Every pattern is linear in the line's length: a hostile path or a long base64 blob
# must not cost seconds per line (a leading run either bounded or anchored by a
# lookbehind to the start of its run, so no start inside it scans it again).
# An address: a local part (letters in any script, digits, RFC 5322's specials, an
# apostrophe after the first character: o'brien@...) and a domain (internationalised
# too: bücher.example). At most 64 characters of local part, as RFC 5321 allows.
_EMAIL_LOCAL = r"[\w!#$%&*+^~.-][\w!#$%&'*+^~.-]{0,63}"
_EMAIL = re.compile(_EMAIL_LOCAL + r"(?:@|%40)(?:[\w-]{1,63}\.){1,8}[^\W\d_]{2,63}")
# A password in a URL's userinfo (DATABASE_URL, EMAIL_URL, BOUNCE_IMAP_URL, a broker URL
# in a connection error): scheme://user:PASSWORD@host.
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]{0,31}://[^\s:/@]{0,256}:)[^\s@/]{1,256}@")
# Stripe secret and restricted keys and webhook secrets (publishable keys are public).
_STRIPE_SECRET = re.compile(r"\b(?:sk|rk)_(?:test|live)_[A-Za-z0-9]++|\bwhsec_[A-Za-z0-9+/=]++")
_BEARER = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
# A path segment after the routes whose segment is a token (readers/, newsletters/,
# donations/ and articles/ urls; /n/c/ and /n/o/ are tracked links and the opens pixel).
_TOKEN_PATH = re.compile(
    r"(/(?:sign-in|confirm|preferences|unsubscribe|thanks|share|n/c|n/o)/)[^/\s?#\"'<>]+"
)
# Query parameters that carry a credential.
_TOKEN_QUERY = re.compile(
    r"([?&](?:token|key|signature|sig|code|secret|password|api_key|client_secret)=)[^&\s#\"'<>]+",
    re.IGNORECASE,
)
# Django's signed values (`payload:timestamp:signature`), wherever they appear.
_SIGNED = re.compile(
    r"(?<![A-Za-z0-9_-])\.?[A-Za-z0-9_-]{8,}+(?::[A-Za-z0-9_-]{4,}+){1,2}:[A-Za-z0-9_-]{20,}+"
)
# Card-number shaped digit runs (13-19 digits, spaces or dashes allowed); Luhn-checked.
_CARD = re.compile(r"(?<![\d])\b\d(?:[ -]?\d){12,18}\b")


def _luhn(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"[ -]", "", match.group(0))
    return REDACTED_CARD if _luhn(digits) else match.group(0)


def text_scrub(text: str) -> str:
    """The text with every address, secret, card number and link token redacted. Each
    pattern runs only when the line holds the character it cannot match without (most
    lines hold none), so an ordinary line costs a few substring tests."""
    if not text:
        return text
    if "/" in text:
        text = _TOKEN_PATH.sub(rf"\1{REDACTED_TOKEN}", text)
        if "://" in text:
            text = _URL_PASSWORD.sub(rf"\1{REDACTED_SECRET}@", text)
    if "=" in text:
        text = _TOKEN_QUERY.sub(rf"\1{REDACTED_TOKEN}", text)
    if ":" in text:
        text = _SIGNED.sub(REDACTED_TOKEN, text)
    if "@" in text or "%40" in text:
        text = _EMAIL.sub(REDACTED_EMAIL, text)
    if "sk_" in text or "rk_" in text or "whsec_" in text:
        text = _STRIPE_SECRET.sub(REDACTED_SECRET, text)
    lowered = text.lower()
    if "bearer" in lowered or "basic" in lowered:
        text = _BEARER.sub(rf"\1 {REDACTED_SECRET}", text)
    return _CARD.sub(_card, text)


def value_scrub(value: Any) -> Any:
    """Strings scrubbed, inside dicts (keys too: an SMTP refusal maps addresses to
    replies), lists, tuples and sets; numbers, booleans and None as they are; anything
    else (bytes, a request object whose repr names its path) becomes its scrubbed text,
    as a formatter would have printed it unscrubbed."""
    if isinstance(value, str):
        return text_scrub(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict):
        return {value_scrub(key): value_scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [value_scrub(item) for item in value]
        try:  # a named tuple takes its items one by one; a subclass may take neither
            return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
        except Exception:
            return items
    if isinstance(value, bytes | bytearray):
        return text_scrub(bytes(value).decode("utf-8", "replace"))
    try:
        return text_scrub(str(value))
    except Exception:  # a broken __str__: say what it was, not what it holds
        return f"<{type(value).__name__}>"


#: LogRecord's own attributes; anything else on a record came from `extra=`.
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
_FORMATTER = logging.Formatter()


class ScrubFilter(logging.Filter):
    """Attached to every handler (a handler's filters see the records of all loggers):
    hands on a scrubbed copy with the message rendered, the traceback rendered and
    scrubbed (`exc_text`, `exc_info` cleared so no formatter renders it again), and
    every `extra` value scrubbed. Other handlers keep the original record."""

    def filter(self, record: logging.LogRecord) -> logging.LogRecord:
        clean = copy.copy(record)
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: say so rather than lose the line
            message = f"{record.msg!r} (unformattable arguments)"
        clean.msg, clean.args = text_scrub(message), None
        if record.exc_info and not record.exc_text:
            clean.exc_text = _FORMATTER.formatException(record.exc_info)
        if clean.exc_text:
            clean.exc_text = text_scrub(clean.exc_text)
        clean.exc_info = None
        if clean.stack_info:
            clean.stack_info = text_scrub(clean.stack_info)
        for name, value in record.__dict__.items():
            if name not in _RECORD_ATTRIBUTES:
                setattr(clean, name, value_scrub(value))
        return clean


def sentry_event_scrub(event: Any, hint: Any = None) -> Any:
    """Sentry's `before_send`: every string in the event scrubbed (exception values, frame
    variables, breadcrumbs, the request's URL and data) and no cookie or credential
    header kept."""
    request = event.get("request")
    if isinstance(request, dict):
        request.pop("cookies", None)
        headers = request.get("headers")
        if isinstance(headers, dict):
            for name in list(headers):
                if name.lower() in {"authorization", "cookie", "stripe-signature", "x-csrftoken"}:
                    headers[name] = REDACTED_SECRET
    return value_scrub(event)
