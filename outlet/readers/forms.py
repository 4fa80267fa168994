from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _


class EmailForm(forms.Form):
    email = forms.EmailField(
        label=_("Email address"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )


class DeleteForm(forms.Form):
    confirm = forms.BooleanField(
        label=_("I understand: my newsletter subscriptions end and my data is deleted."),
        required=True,
    )
