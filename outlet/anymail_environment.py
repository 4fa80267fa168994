"""anymail reads only Django settings: each ANYMAIL_<NAME> in the environment becomes
ANYMAIL["<NAME>"], parsed by its type (a raw "false" would be truthy: with
DEBUG_API_REQUESTS that logs API keys). A name not listed here stops startup."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from django.core.exceptions import ImproperlyConfigured

BOOLEANS = {"DEBUG_API_REQUESTS", "IGNORE_RECIPIENT_STATUS", "IGNORE_UNSUPPORTED_FEATURES"}
FLOATS = {"REQUESTS_TIMEOUT"}
STRINGS = re.compile(
    r"WEBHOOK_SECRET|[A-Z0-9]+(?:_[A-Z0-9]+)*_(?:API_KEY|API_URL|SERVER_TOKEN|ACCOUNT_TOKEN|"
    r"SENDER_DOMAIN|WEBHOOK_SIGNING_KEY|WEBHOOK_SECRET|SECRET_KEY|SECRET|REGION_NAME|"
    r"CONFIGURATION_SET_NAME|MESSAGE_STREAM|SUBACCOUNT|SIGNING_SECRET|INBOUND_SECRET|"
    r"WEBHOOK_KEY|WEBHOOK_VERIFICATION_KEY)"
)


def anymail_from_environment(
    environ: Mapping[str, str], *, boolean: Callable[[str], object], number: Callable[[str], object]
) -> dict[str, object]:
    """`boolean` and `number` read one variable by name (settings' readers, which name
    the variable when its value is malformed)."""
    found: dict[str, object] = {}
    for name, value in environ.items():
        if not name.startswith("ANYMAIL_") or not value:
            continue
        key = name.removeprefix("ANYMAIL_")
        if key in BOOLEANS:
            found[key] = boolean(name)
        elif key in FLOATS:
            found[key] = number(name)
        elif STRINGS.fullmatch(key):
            found[key] = value
        else:
            raise ImproperlyConfigured(
                f"Environment variable {name} is not an anymail setting outlet knows; "
                "check its spelling (see anymail's documentation for your ESP)"
            )
    return found
