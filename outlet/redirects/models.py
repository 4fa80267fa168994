"""Old addresses that answer 301 to their new home (an imported archive's permalinks)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _


def validate_old_path(value: str) -> None:
    if not value.startswith("/") or value.startswith("//"):
        raise ValidationError(
            _("An old address is a path on this site, starting with one “/”, e.g. /2019/05/slug/.")
        )


def validate_target(value: str) -> None:
    """Only addresses on this site: a redirect table must never send readers elsewhere.

    Browsers read a backslash as a slash and drop tabs and line breaks anywhere in an
    address, so "/\\evil.example" and "/<tab>/evil.example" are other sites: no
    backslash, whitespace or control character at all (a path here has them encoded).
    """
    if (
        not value.startswith("/")
        or value.startswith("//")
        or any(char == "\\" or char.isspace() or not char.isprintable() for char in value)
    ):
        raise ValidationError(
            _("A redirect goes to a path on this site, starting with one “/”, e.g. /flood-night/.")
        )


class Redirect(models.Model):
    old_path = models.CharField(
        _("old address"),
        max_length=500,
        unique=True,
        validators=[validate_old_path],
        help_text=_("The path readers arrive at (and its query, for /?p=123)."),
    )
    target = models.CharField(
        _("new address"),
        max_length=500,
        validators=[validate_target],
        help_text=_("Path on this site the old address now answers with (301)."),
    )
    hits = models.PositiveBigIntegerField(_("hits"), default=0, editable=False)
    last_hit_at = models.DateTimeField(_("last hit"), null=True, blank=True, editable=False)
    source = models.CharField(
        _("source"), max_length=120, blank=True, help_text=_("The import that made it, if any.")
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["old_path"]
        verbose_name = _("redirect")

    def __str__(self) -> str:
        return f"{self.old_path} → {self.target}"

    def clean(self) -> None:
        """Refuse a loop readers would bounce around in: to itself, or straight back."""
        if self.old_path and self.old_path == self.target:
            raise ValidationError({"target": _("A redirect cannot lead to itself.")})
        loop = Redirect.objects.filter(old_path=self.target, target=self.old_path)
        if self.old_path and loop.exclude(pk=self.pk).exists():
            raise ValidationError(
                {"target": _("%(target)s already redirects back here.") % {"target": self.target}}
            )
