from __future__ import annotations

from django import forms


class EmailForm(forms.Form):
    email = forms.EmailField(
        label="Email address",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )


class DeleteForm(forms.Form):
    confirm = forms.BooleanField(
        label="I understand: my newsletter subscriptions end and my data is deleted.",
        required=True,
    )
