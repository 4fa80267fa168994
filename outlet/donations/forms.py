from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django import forms
from django.conf import settings

from .models import Frequency
from .services import NEWSLETTER_CONSENT
from .templatetags.money import money_format

UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


class DonationForm(forms.Form):
    """The reader's gift. Amounts arrive in major units and leave in minor units;
    the limits are checked here, on the server, whatever the page allowed."""

    amount_choice = forms.ChoiceField(widget=forms.RadioSelect, required=False)
    custom_amount = forms.DecimalField(
        required=False,
        min_value=Decimal("0.01"),
        max_digits=10,
        decimal_places=2,
        label="Other amount",
        widget=forms.NumberInput(attrs={"inputmode": "decimal", "step": "0.01"}),
    )
    frequency = forms.ChoiceField(
        choices=Frequency.choices, initial=Frequency.ONCE, widget=forms.RadioSelect
    )
    name = forms.CharField(max_length=200, widget=forms.TextInput(attrs={"autocomplete": "name"}))
    email = forms.EmailField(widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    cover_fee = forms.BooleanField(required=False)
    public_credit = forms.BooleanField(required=False, label="List my name among our supporters")
    public_name = forms.CharField(
        max_length=200, required=False, label="Name to show (leave empty for your name)"
    )
    newsletter_opt_in = forms.BooleanField(required=False, label=NEWSLETTER_CONSENT)
    source = forms.CharField(max_length=200, required=False, widget=forms.HiddenInput)
    campaign = forms.SlugField(required=False, widget=forms.HiddenInput)
    # Made by the page's script once per checkout; a repeat submit with it finds the same
    # donation (see services.checkout_start).
    checkout_key = forms.RegexField(
        regex=r"^[A-Za-z0-9-]{16,64}$", required=False, widget=forms.HiddenInput
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        currency = settings.DONATION_CURRENCY
        choices = [
            (str(p), money_format(p, currency, whole=True)) for p in settings.DONATION_PRESETS
        ]
        amount_choice = self.fields["amount_choice"]
        assert isinstance(amount_choice, forms.ChoiceField)
        amount_choice.choices = [*choices, ("other", "Other")]
        for name in UTM_FIELDS:
            self.fields[name] = forms.CharField(
                max_length=200, required=False, widget=forms.HiddenInput
            )

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or self.cleaned_data
        choice = data.get("amount_choice") or ""
        amount: int | None = None
        if choice and choice != "other":
            if choice.isdigit() and int(choice) in settings.DONATION_PRESETS:
                amount = int(choice)
        elif data.get("custom_amount") is not None:
            major = data["custom_amount"].quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            amount = int(major * 100)
        low, high = settings.DONATION_MIN_AMOUNT, settings.DONATION_MAX_AMOUNT
        currency = settings.DONATION_CURRENCY
        if amount is None:
            self.add_error("custom_amount", "Please choose or enter an amount.")
        elif not low <= amount <= high:
            self.add_error(
                "custom_amount",
                f"Please give between {money_format(low, currency)} and "
                f"{money_format(high, currency)}.",
            )
        data["amount"] = amount
        data["utm"] = {name: data[name] for name in UTM_FIELDS if data.get(name)}
        return data


class AmountChangeForm(forms.Form):
    amount = forms.DecimalField(
        min_value=Decimal("0.01"), max_digits=10, decimal_places=2, label="New amount"
    )

    def clean_amount(self) -> int:
        major = self.cleaned_data["amount"].quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        amount = int(major * 100)
        low, high = settings.DONATION_MIN_AMOUNT, settings.DONATION_MAX_AMOUNT
        currency = settings.DONATION_CURRENCY
        if not low <= amount <= high:
            raise forms.ValidationError(
                f"Please give between {money_format(low, currency)} and "
                f"{money_format(high, currency)}."
            )
        return amount
