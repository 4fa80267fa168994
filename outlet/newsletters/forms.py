"""Forms parse and validate input; the decisions are made in services."""

from __future__ import annotations

from datetime import timedelta
from typing import cast

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from outlet.newsletters.audience.formats import AUTO
from outlet.newsletters.models import Newsletter, SubscriberImport
from outlet.newsletters.selectors import newsletter_choices_public
from outlet.newsletters.services import MAX_EMAIL_LENGTH, email_validate

CONSENT_TEXT = _(
    "We will email you the newsletters you choose. Every email has a link to change your "
    "choices or unsubscribe. We count which emails are opened and which links are clicked, "
    "to learn what readers find useful; that record is deleted with your data. We never "
    "share your address."
)


class NewsletterChoiceField(forms.ModelMultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def label_from_instance(self, obj: Newsletter) -> str:
        return obj.name


class EmailField(forms.CharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", MAX_EMAIL_LENGTH)
        kwargs.setdefault("error_messages", {})
        kwargs["error_messages"].setdefault("max_length", _("That email address is too long."))
        kwargs.setdefault(
            "widget", forms.EmailInput(attrs={"autocomplete": "email", "inputmode": "email"})
        )
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean(value)
        try:
            return email_validate(value)
        except ValidationError:
            raise ValidationError(
                _("Enter a valid email address, like name@example.com."), code="invalid"
            ) from None


class SignupForm(forms.Form):
    email = EmailField(
        label=_("Email address"), error_messages={"required": _("Enter your email address.")}
    )
    newsletters = NewsletterChoiceField(
        queryset=Newsletter.objects.none(),
        label=_("Newsletters"),
        error_messages={"required": _("Choose at least one newsletter.")},
    )
    # A field people never see (hidden by CSS, skipped by screen readers); bots fill it.
    website = forms.CharField(required=False, label=_("Leave this empty"), max_length=200)
    # Context for the consent record, cut to fit rather than refused: a reader cannot fix them.
    form_name = forms.CharField(required=False, widget=forms.HiddenInput)
    page_url = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        cast(
            forms.ModelMultipleChoiceField, self.fields["newsletters"]
        ).queryset = newsletter_choices_public()

    def clean_form_name(self) -> str:
        return self.cleaned_data["form_name"][:80]

    def clean_page_url(self) -> str:
        return self.cleaned_data["page_url"][:400]

    @property
    def is_bot(self) -> bool:
        return bool(self.data.get("website"))


class LinkRequestForm(forms.Form):
    email = EmailField(
        label=_("Email address"), error_messages={"required": _("Enter your email address.")}
    )


class PreferencesForm(forms.Form):
    PAUSE_CHOICES = [
        ("", _("Keep sending")),
        ("7", _("Pause for a week")),
        ("30", _("Pause for a month")),
        ("90", _("Pause for three months")),
    ]

    newsletters = NewsletterChoiceField(
        queryset=Newsletter.objects.none(), required=False, label=_("Your newsletters")
    )
    pause = forms.ChoiceField(choices=PAUSE_CHOICES, required=False, label=_("Take a break"))

    def __init__(self, *args, newsletters, **kwargs):
        super().__init__(*args, **kwargs)
        cast(forms.ModelMultipleChoiceField, self.fields["newsletters"]).queryset = newsletters

    def paused_until(self):
        days = self.cleaned_data.get("pause")
        return timezone.localdate() + timedelta(days=int(days)) if days else None


class ImportForm(forms.Form):
    file = forms.FileField(
        label=_("Export file"),
        help_text=_(
            "Mailchimp's audience export (the zip or one of its CSV files), Substack's "
            "subscriber export, Ghost's members CSV, or any CSV with a header row naming an "
            "“email” column (“name” is optional). UTF-8, UTF-16 or Windows-1252."
        ),
    )
    format = forms.ChoiceField(
        label=_("Format"),
        choices=[(AUTO, _("Recognise from the file")), *SubscriberImport.Format.choices],
        initial=AUTO,
        required=False,
        help_text=_("Recognised from the file's header row unless you choose one."),
    )
    newsletters = forms.ModelMultipleChoiceField(
        label=_("Newsletters"),
        queryset=Newsletter.objects.all(),
        widget=forms.CheckboxSelectMultiple,
    )
    consent_text = forms.CharField(
        label=_("How did these people consent?"),
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("E.g. “Signed up on our previous newsletter tool's form, 2021–2025.”"),
    )
    consent_confirmed = forms.BooleanField(
        label=_("I confirm everyone in this file agreed to receive these newsletters."),
        error_messages={"required": _("You can only import people who consented.")},
    )

    MAX_BYTES = 20 * 1024 * 1024

    def clean_format(self) -> str:
        return self.cleaned_data.get("format") or AUTO

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > self.MAX_BYTES:
            raise ValidationError(_("The file is larger than 20 MB; split it into smaller files."))
        return upload
