"""`{{ amount|money:currency }}`: minor units to a localised amount with its symbol, through
outlet/donations/currencies.py (which knows each currency's decimals)."""

from __future__ import annotations

from django import template

from ..currencies import amount_format, amount_input_step, amount_to_major, currency_rule

register = template.Library()


def money_format(amount: int | None, currency: str = "usd", *, whole: bool = False) -> str:
    return amount_format(amount=amount, currency=currency, whole=whole)


@register.filter
def money(amount: int | None, currency: str = "usd") -> str:
    return amount_format(amount=amount, currency=currency)


@register.filter
def money_whole(amount: int | None, currency: str = "usd") -> str:
    """Without decimals when there are none: $25 rather than $25.00 (preset buttons), and
    with them when there are: $12.50, never a rounded $12."""
    return amount_format(amount=amount, currency=currency, whole=True)


@register.filter
def money_input(amount: int | None, currency: str = "usd") -> str:
    """Minor units as a number box's value in major units ("12.50", "5000")."""
    places = currency_rule(currency).places
    value = amount_to_major(amount=amount or 0, currency=currency)
    return f"{value:.{places}f}"


@register.filter
def money_exponent(currency: str) -> int:
    """Digits of Stripe's minor unit, for scripts (never a hard-coded /100)."""
    return currency_rule(currency).exponent


@register.filter
def money_places(currency: str) -> int:
    """Decimals a person may type in this currency."""
    return currency_rule(currency).places


@register.filter
def money_step(currency: str) -> str:
    return amount_input_step(currency)
