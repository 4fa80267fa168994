"""Static pages (About, Masthead, Corrections policy): edited in the admin like articles."""

from __future__ import annotations

from django.db import models
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from django_prose_editor.fields import ProseEditorField

from outlet.articles.models import BODY_EDITOR_EXTENSIONS
from outlet.articles.sanitising import sanitise_body
from outlet.core.language import language_valid
from outlet.core.site_url import (
    CANONICAL_URL_HELP,
    canonical_address,
    canonical_here,
    canonical_url_validator,
)


class PageQuerySet(models.QuerySet["Page"]):
    def published(self) -> PageQuerySet:
        return self.filter(status=Page.Status.PUBLISHED)

    def canonical_here(self) -> PageQuerySet:
        """Those whose canonical address is their own page on this site."""
        return self.filter(canonical_here(url_name="pages:detail"))


class Page(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        PUBLISHED = "published", _("Published")

    title = models.CharField(_("title"), max_length=200)
    slug = models.SlugField(
        _("slug"), max_length=200, unique=True, help_text=_("Its address: /page/<slug>/.")
    )
    body = ProseEditorField(
        config={"extensions": BODY_EDITOR_EXTENSIONS}, sanitize=sanitise_body, blank=True
    )
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.DRAFT
    )
    seo_title = models.CharField(_("SEO title"), max_length=200, blank=True)
    seo_description = models.CharField(_("SEO description"), max_length=300, blank=True)
    canonical_url = models.URLField(
        _("canonical URL"),
        max_length=500,
        blank=True,
        validators=[canonical_url_validator],
        help_text=CANONICAL_URL_HELP,
    )
    language = models.CharField(
        _("language"),
        max_length=10,
        blank=True,
        default="",
        # Also in the database: bulk writers (imports, COPY) name only their own columns.
        db_default="",
        help_text=_("Empty means the site's default language."),
    )
    translation_group = models.UUIDField(
        _("translation group"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("Pages sharing it are translations of one another."),
    )
    updated_at = models.DateTimeField(auto_now=True)

    objects = PageQuerySet.as_manager()

    class Meta:
        ordering = ["title"]
        verbose_name = _("page")
        constraints = [
            models.UniqueConstraint(
                fields=["translation_group", "language"], name="page_one_per_language"
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        with translation.override(self.language_code):
            return reverse("pages:detail", kwargs={"slug": self.slug})

    @property
    def language_code(self) -> str:
        """The page's language: its own, or the site's default when blank."""
        return language_valid(self.language)

    @property
    def canonical_address(self) -> str:
        """The address search engines should index this page under."""
        return canonical_address(canonical_url=self.canonical_url, path=self.get_absolute_url())
