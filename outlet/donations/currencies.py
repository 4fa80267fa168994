"""
Money in each currency: what a person types and reads, and the minor units Stripe takes.

The one place that knows a currency's exponent. Stripe's rules are not ISO 4217's (nor
Babel's): its zero-decimal list (JPY, KRW, …) takes whole units; its three-decimal
currencies (BHD, JOD, KWD, OMR, TND) take thousandths whose last digit must be 0; ISK
stays two-decimal in the API although only whole krónur may be charged (amounts in
multiples of 100), and HUF and TWD are two-decimal in the API but paid out in whole units
only, so gifts in them are kept whole too. Forms, donate.js (through the page's data
attributes), the CSV export, emails and the admin all go through here.
See https://docs.stripe.com/currencies#zero-decimal and #special-cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from babel.core import Locale, UnknownLocaleError
from babel.numbers import format_currency, get_currency_precision, parse_pattern
from django.utils import translation

STRIPE_ZERO_DECIMAL = frozenset(
    [
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    ]
)
STRIPE_THREE_DECIMAL = frozenset(["bhd", "jod", "kwd", "omr", "tnd"])
# Two decimals in Stripe's API, but only whole units may be charged (ISK) or paid out
# (HUF, TWD): an amount in them is a multiple of 100 minor units.
STRIPE_WHOLE_UNITS = frozenset(["isk", "huf", "twd"])


@dataclass(frozen=True)
class CurrencyRule:
    """`exponent`: digits of Stripe's minor unit (2 for USD: cents). `step`: the minor
    units an amount must be a multiple of. `places`: decimals a person may type."""

    code: str
    exponent: int
    step: int

    @property
    def places(self) -> int:
        return self.exponent - (len(str(self.step)) - 1)

    @property
    def display_places(self) -> int:
        """Decimals shown to people: the currency's own (BHD 1.250), never more than
        Stripe keeps."""
        try:
            own = get_currency_precision(self.code.upper())
        except Exception:  # noqa: BLE001 - an unknown code reads like its Stripe rule
            own = self.places
        return max(self.places, min(own, self.exponent))


def currency_rule(currency: str) -> CurrencyRule:
    code = (currency or "usd").lower()
    if code in STRIPE_ZERO_DECIMAL:
        return CurrencyRule(code=code, exponent=0, step=1)
    if code in STRIPE_THREE_DECIMAL:
        return CurrencyRule(code=code, exponent=3, step=10)
    if code in STRIPE_WHOLE_UNITS:
        return CurrencyRule(code=code, exponent=2, step=100)
    return CurrencyRule(code=code, exponent=2, step=1)


class AmountInvalid(ValueError):
    """An amount a person typed that this currency cannot take."""


def amount_to_minor(*, major: Decimal | str, currency: str) -> int:
    """What a person typed ("12.50", "5000") to Stripe's minor units. More decimals than
    the currency allows are refused, never rounded away."""
    rule = currency_rule(currency)
    try:
        value = Decimal(str(major).strip())
    except InvalidOperation as exc:
        raise AmountInvalid("not a number") from exc
    if not value.is_finite() or value < 0:
        raise AmountInvalid("not a positive number")
    minor = value.scaleb(rule.exponent)
    if minor != minor.to_integral_value() or int(minor) % rule.step:
        raise AmountInvalid(f"at most {rule.places} decimals")
    return int(minor)


def amount_to_major(*, amount: int, currency: str) -> Decimal:
    """Minor units to a Decimal in major units, with the currency's display decimals."""
    rule = currency_rule(currency)
    value = Decimal(int(amount or 0)).scaleb(-rule.exponent)
    return value.quantize(Decimal(1).scaleb(-rule.display_places))


def amount_is_valid(*, amount: int, currency: str) -> bool:
    """Whether Stripe can charge `amount` minor units in `currency`."""
    return amount > 0 and amount % currency_rule(currency).step == 0


def amount_input_step(currency: str) -> str:
    """A number box's `step`: "1" for yen and krónur, "0.01" for dollars and dinars."""
    places = currency_rule(currency).places
    return "1" if places == 0 else f"0.{'0' * (places - 1)}1"


def _locale() -> Locale:
    language = translation.get_language() or "en"
    try:
        return Locale.parse(translation.to_locale(language))
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en")


def amount_format(*, amount: int | None, currency: str, whole: bool = False) -> str:
    """A localised amount with its symbol: "$12.50", "¥5,000", "BHD 1.250". With `whole`,
    an amount without a fraction drops its decimals ("$25" on a preset button) and one
    with a fraction keeps them ("$12.50", never a rounded "$12")."""
    rule = currency_rule(currency)
    value = amount_to_major(amount=amount or 0, currency=currency)
    locale = _locale()
    places = rule.display_places
    if whole and value == value.to_integral_value():
        places = 0
    pattern = parse_pattern(locale.currency_formats["standard"].pattern)
    pattern.frac_prec = (places, places)
    return format_currency(
        value, rule.code.upper(), format=pattern, locale=locale, currency_digits=False
    )


def amount_csv(*, amount: int | None, currency: str) -> str:
    """An amount for spreadsheets: major units, a dot, the currency's decimals, no symbol."""
    return str(amount_to_major(amount=amount or 0, currency=currency))
