"""`manage.py check`: the configured amounts are ones Stripe can charge in the configured
currency (whole krónur for ISK, steps of 0.010 for BHD), or the site refuses to start
rather than fail at a reader's checkout; and checkouts expire after a real delay."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register

from .currencies import amount_format, currency_rule


@register()
def donation_amounts_check(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    currency = settings.DONATION_CURRENCY
    step = currency_rule(currency).step
    configured = {
        "DONATION_PRESETS": list(settings.DONATION_PRESETS),
        "DONATION_MIN_AMOUNT": [settings.DONATION_MIN_AMOUNT],
        "DONATION_MAX_AMOUNT": [settings.DONATION_MAX_AMOUNT],
    }
    errors = []
    for setting, amounts in configured.items():
        wrong = [amount for amount in amounts if amount <= 0 or amount % step]
        if wrong:
            errors.append(
                Error(
                    f"{setting} holds {', '.join(map(str, wrong))} minor units, which "
                    f"{currency.upper()} cannot be charged in: amounts must be positive "
                    f"multiples of {step} (e.g. {amount_format(amount=step, currency=currency)}).",
                    hint="Amounts are in Stripe's minor units of DONATION_CURRENCY.",
                    id="donations.E001",
                )
            )
    if settings.DONATION_CHECKOUT_EXPIRY_HOURS < 1:
        errors.append(
            Error(
                "DONATION_CHECKOUT_EXPIRY_HOURS must be at least 1: "
                f"{settings.DONATION_CHECKOUT_EXPIRY_HOURS} would mark every unfinished "
                "checkout abandoned on the next beat, those being paid included.",
                id="donations.E002",
            )
        )
    return errors
