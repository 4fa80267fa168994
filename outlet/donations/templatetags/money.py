"""`{{ amount|money:currency }}`: minor units to a localised amount with its symbol."""

from __future__ import annotations

from django import template
from django.utils.formats import number_format

register = template.Library()

SYMBOLS = {"usd": "$", "cad": "CA$", "aud": "A$", "eur": "€", "gbp": "£"}
ZERO_DECIMAL = {"jpy", "krw", "vnd", "clp"}


def money_format(amount: int | None, currency: str = "usd", *, whole: bool = False) -> str:
    currency = (currency or "usd").lower()
    exponent = 0 if currency in ZERO_DECIMAL else 2
    value = (amount or 0) / (10**exponent)
    places = 0 if whole or (exponent and (amount or 0) % 100 == 0 and whole) else exponent
    number = number_format(value, decimal_pos=places, use_l10n=True, force_grouping=True)
    symbol = SYMBOLS.get(currency)
    return f"{symbol}{number}" if symbol else f"{number} {currency.upper()}"


@register.filter
def money(amount: int | None, currency: str = "usd") -> str:
    return money_format(amount, currency)


@register.filter
def money_whole(amount: int | None, currency: str = "usd") -> str:
    """Without cents when there are none: $25 rather than $25.00 (preset buttons)."""
    if amount is not None and amount % 100 == 0:
        return money_format(amount, currency, whole=True)
    return money_format(amount, currency)
