from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .currencies import (
    AmountInvalid,
    amount_format,
    amount_input_step,
    amount_to_major,
    amount_to_minor,
    currency_rule,
)
from .models import Frequency

UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


class DonationForm(forms.Form):
    """The reader's gift. Amounts arrive in major units and leave in minor units;
    the limits are checked here, on the server, whatever the page allowed."""

    amount_choice = forms.ChoiceField(widget=forms.RadioSelect, required=False)
    # Decimals are checked against the currency in clean() (amount_minor_clean).
    custom_amount = forms.DecimalField(
        required=False,
        min_value=Decimal(0),
        max_digits=15,
        label=_("Other amount"),
        widget=forms.NumberInput(attrs={"inputmode": "decimal"}),
    )
    frequency = forms.ChoiceField(
        choices=Frequency.choices, initial=Frequency.ONCE, widget=forms.RadioSelect
    )
    name = forms.CharField(
        max_length=200,
        label=_("Full name"),
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    email = forms.EmailField(
        label=_("Email"), widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )
    cover_fee = forms.BooleanField(required=False)
    public_credit = forms.BooleanField(required=False, label=_("List my name among our supporters"))
    public_name = forms.CharField(
        max_length=200, required=False, label=_("Name to show (leave empty for your name)")
    )
    # Shown translated; the consent recorded with the sign-up is NEWSLETTER_CONSENT.
    newsletter_opt_in = forms.BooleanField(
        required=False, label=_("Send me the newsletter (we'll ask you to confirm)")
    )
    source = forms.CharField(max_length=200, required=False, widget=forms.HiddenInput)
    campaign = forms.SlugField(required=False, widget=forms.HiddenInput)
    # Made by the page's script once per checkout; a repeat submit with it finds the same
    # donation (see services.checkout_intent_create).
    checkout_key = forms.RegexField(
        regex=r"^[A-Za-z0-9-]{16,64}$", required=False, widget=forms.HiddenInput
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        currency = settings.DONATION_CURRENCY
        self.fields["custom_amount"].widget.attrs["step"] = amount_input_step(currency)
        choices = [
            (str(p), amount_format(amount=p, currency=currency, whole=True))
            for p in settings.DONATION_PRESETS
        ]
        amount_choice = self.fields["amount_choice"]
        assert isinstance(amount_choice, forms.ChoiceField)
        amount_choice.choices = [*choices, ("other", _("Other"))]
        for name in UTM_FIELDS:
            self.fields[name] = forms.CharField(
                max_length=200, required=False, widget=forms.HiddenInput
            )

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or self.cleaned_data
        choice = data.get("amount_choice") or ""
        amount: int | None = None
        currency = settings.DONATION_CURRENCY
        try:
            if choice and choice != "other":
                if choice.isdigit() and int(choice) in settings.DONATION_PRESETS:
                    amount = amount_limits_check(int(choice), currency=currency)
            elif data.get("custom_amount") is not None:
                amount = amount_minor_clean(data["custom_amount"], currency=currency)
            if amount is None:
                raise forms.ValidationError(_("Please choose or enter an amount."))
        except forms.ValidationError as error:
            self.add_error("custom_amount", error)
            amount = None
        data["amount"] = amount
        data["utm"] = {name: data[name] for name in UTM_FIELDS if data.get(name)}
        return data


def donate_prefill(*, query: Any) -> dict[str, str]:
    """The donate form's initial amount and frequency from a link's query string
    (`?amount=25.00&frequency=month`, as a failed payment's "try again" links): a preset
    is picked, any other amount goes in "Other". Whatever cannot be read is left out, so a
    bad link shows the page as usual; the amount is checked again when submitted."""
    initial: dict[str, str] = {}
    currency = settings.DONATION_CURRENCY
    try:
        amount = amount_to_minor(major=str(query.get("amount", ""))[:20], currency=currency)
    except AmountInvalid:
        amount = 0
    if amount in settings.DONATION_PRESETS:
        initial["amount_choice"] = str(amount)
    elif amount > 0:
        initial["amount_choice"] = "other"
        initial["custom_amount"] = str(amount_to_major(amount=amount, currency=currency))
    frequency = query.get("frequency")
    initial["frequency"] = frequency if frequency in Frequency.values else Frequency.ONCE
    return initial


class AmountChangeForm(forms.Form):
    """A recurring gift's new amount, typed in major units of the gift's own currency."""

    amount = forms.DecimalField(min_value=Decimal(0), max_digits=15, label=_("New amount"))

    def __init__(self, *args: Any, currency: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.currency = currency
        self.fields["amount"].widget.attrs["step"] = amount_input_step(currency)

    def clean_amount(self) -> int:
        return amount_minor_clean(self.cleaned_data["amount"], currency=self.currency)


def amount_minor_clean(major: Decimal, *, currency: str) -> int:
    """A typed amount in minor units, within the site's limits; a ValidationError that
    says what to type otherwise."""
    try:
        amount = amount_to_minor(major=major, currency=currency)
    except AmountInvalid:
        places = currency_rule(currency).places
        if places == 0:
            raise forms.ValidationError(
                _("Please enter a whole amount, without decimals.")
            ) from None
        raise forms.ValidationError(
            ngettext(
                "Please enter an amount with at most %(places)d decimal.",
                "Please enter an amount with at most %(places)d decimals.",
                places,
            )
            % {"places": places}
        ) from None
    return amount_limits_check(amount, currency=currency)


def amount_limits_check(amount: int, *, currency: str) -> int:
    low, high = settings.DONATION_MIN_AMOUNT, settings.DONATION_MAX_AMOUNT
    if not low <= amount <= high:
        raise forms.ValidationError(
            _("Please give between %(low)s and %(high)s.")
            % {
                "low": amount_format(amount=low, currency=currency),
                "high": amount_format(amount=high, currency=currency),
            }
        )
    return amount


class AdoptionForm(forms.Form):
    """The admin's stripe_adopt: the same filters as the command's options."""

    prices = forms.CharField(
        label=_("Prices or plans"),
        required=False,
        help_text=_("Stripe ids, separated by spaces or commas; empty for any."),
    )
    products = forms.CharField(
        label=_("Products"),
        required=False,
        help_text=_("Stripe ids, separated by spaces or commas; empty for any."),
    )
    metadata = forms.CharField(
        label=_("Metadata"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("One KEY=VALUE a line; a subscription must carry every pair."),
    )
    dry_run = forms.BooleanField(
        label=_("Dry run: report what would be adopted, write nothing"),
        required=False,
        initial=True,
    )

    def clean_metadata(self) -> list[str]:
        pairs = [line.strip() for line in self.cleaned_data["metadata"].splitlines()]
        pairs = [pair for pair in pairs if pair]
        for pair in pairs:
            key, sep, _value = pair.partition("=")
            if not sep or not key.strip():
                raise forms.ValidationError(
                    _("Write each pair as KEY=VALUE, not %(pair)s."), params={"pair": pair}
                )
        return pairs

    @staticmethod
    def ids(value: str) -> list[str]:
        return [word for word in value.replace(",", " ").split() if word]
