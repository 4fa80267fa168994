from __future__ import annotations

import math
from datetime import datetime

from django.conf import settings
from django.db import models
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.utils.html import strip_tags
from django.utils.translation import gettext_lazy as _
from django_prose_editor.fields import ProseEditorField

from outlet.core.site_url import (
    CANONICAL_URL_HELP,
    canonical_address,
    canonical_here,
    canonical_url_validator,
)

from .images import validate_image_upload
from .sanitising import sanitise_body

#: What the body editor offers. The server-side allowlist in sanitising.py is the
#: authority on what survives a save; this only shapes the toolbar.
BODY_EDITOR_EXTENSIONS = {
    "Bold": True,
    "Italic": True,
    "Heading": {"levels": [2, 3]},
    "BulletList": True,
    "OrderedList": True,
    "ListItem": True,
    "Blockquote": True,
    "NodeClass": {
        # The menu names each style "<title>: <style>"; without a title it shows the
        # node's internal name ("blockquote: Pull quote").
        "cssClasses": {
            "blockquote": {
                "title": "Quotation",
                "cssClasses": [{"className": "pull-quote", "title": "Pull quote"}],
            }
        }
    },
    "Link": {"enableTarget": False, "protocols": ["http", "https", "mailto"]},
    # "Browse…" in the figure dialog opens the image library (admin.ArticleImageAdmin).
    "Figure": {"pickerUrl": reverse_lazy("admin:articles_articleimage_picker")},
    "Image": True,
    "Caption": True,
    "HardBreak": True,
    "HorizontalRule": True,
    # Imported archives carry data tables; without these the editor would drop a
    # table the first time an editor opens the article and saves it.
    "Table": True,
    "TableRow": True,
    "TableHeader": True,
    "TableCell": True,
    "History": True,
    "HTML": True,
    "SpecialCharacters": True,
    "NoInjectedStyles": True,
    "FigureCaptionExit": True,
}

WORDS_PER_MINUTE = 230


class Section(models.Model):
    name = models.CharField(max_length=80, unique=True)
    slug = models.SlugField(max_length=80, unique=True)
    description = models.TextField(blank=True)
    position = models.PositiveSmallIntegerField(default=0, help_text="Order in the navigation.")

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("articles:section", kwargs={"slug": self.slug})


class Author(models.Model):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=120, unique=True)
    bio = models.TextField(blank=True)
    photo = models.ImageField(upload_to="authors/", blank=True, validators=[validate_image_upload])
    links = models.TextField(
        blank=True, help_text="Profiles and websites, one address per line (https://…)."
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="author_profile",
        help_text="The editors' account of this author, if any.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("articles:author", kwargs={"slug": self.slug})

    def link_list(self) -> list[str]:
        return [line.strip() for line in self.links.splitlines() if line.strip().startswith("http")]


class Tag(models.Model):
    name = models.CharField(max_length=80, unique=True)
    slug = models.SlugField(max_length=80, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("articles:tag", kwargs={"slug": self.slug})


class Appeal(models.Model):
    """The closing donation appeal an article shows."""

    name = models.CharField(max_length=120, unique=True, help_text="For editors only.")
    heading = models.CharField(max_length=200)
    text = models.TextField()
    button_label = models.CharField(max_length=60, default="Support our journalism")
    is_default = models.BooleanField(
        default=False, help_text="Shown on articles that do not choose an appeal."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=models.Q(is_default=True),
                name="appeal_single_default",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ArticleQuerySet(models.QuerySet["Article"]):
    def published(self) -> ArticleQuerySet:
        """What the public may see: published or scheduled, and its time has come.

        Visibility is computed from the publish time, so a scheduled article
        appears at that moment without waiting for a task to flip its status.
        """
        return self.filter(
            status__in=[Article.Status.SCHEDULED, Article.Status.PUBLISHED],
            publish_at__lte=timezone.now(),
        )

    def canonical_here(self) -> ArticleQuerySet:
        """Those whose canonical address is their own page on this site."""
        return self.filter(canonical_here(url_name="articles:detail"))


class Article(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        REVIEW = "review", _("In review")
        SCHEDULED = "scheduled", _("Scheduled")
        PUBLISHED = "published", _("Published")
        UNPUBLISHED = "unpublished", _("Unpublished")

    class Kind(models.TextChoices):
        NEWS = "news", _("News")
        ANALYSIS = "analysis", _("Analysis")
        OPINION = "opinion", _("Opinion")

    #: Statuses only someone with the publish permission may set.
    PUBLISHING_STATUSES = (Status.SCHEDULED, Status.PUBLISHED, Status.UNPUBLISHED)

    headline = models.CharField(max_length=200)
    slug = models.SlugField(
        max_length=200,
        unique=True,
        help_text="The last part of the article's address, e.g. how-the-map-was-drawn. Unique.",
    )
    dek = models.CharField("dek", max_length=400, blank=True, help_text="The standfirst.")
    body = ProseEditorField(
        config={"extensions": BODY_EDITOR_EXTENSIONS}, sanitize=sanitise_body, blank=True
    )
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.ANALYSIS)
    section = models.ForeignKey(Section, on_delete=models.PROTECT, related_name="articles")
    authors = models.ManyToManyField(Author, through="ArticleAuthor", related_name="articles")
    tags = models.ManyToManyField(Tag, blank=True, related_name="articles")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    publish_at = models.DateTimeField(
        null=True,
        blank=True,
        db_index=True,
        help_text="When it goes public. Required to schedule; empty means now when publishing.",
    )
    revised_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="Last change to the text after publication.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="articles_created",
    )
    featured_image = models.ImageField(
        upload_to="articles/%Y/%m/",
        blank=True,
        validators=[validate_image_upload],
        width_field="image_width",
        height_field="image_height",
    )
    image_width = models.PositiveIntegerField(null=True, blank=True, editable=False)
    image_height = models.PositiveIntegerField(null=True, blank=True, editable=False)
    image_alt = models.CharField(
        "image alt text",
        max_length=300,
        blank=True,
        help_text="Describe the image for readers who cannot see it. Required to publish.",
    )
    image_caption = models.CharField(max_length=300, blank=True)
    image_credit = models.CharField(max_length=200, blank=True)
    seo_title = models.CharField(max_length=200, blank=True)
    seo_description = models.CharField(max_length=300, blank=True)
    canonical_url = models.URLField(
        _("canonical URL"),
        max_length=500,
        blank=True,
        validators=[canonical_url_validator],
        help_text=CANONICAL_URL_HELP,
    )
    featured = models.BooleanField(
        _("featured"),
        default=False,
        help_text=_("Featured: shown first on the home page."),
    )
    appeal = models.ForeignKey(Appeal, null=True, blank=True, on_delete=models.SET_NULL)

    objects = ArticleQuerySet.as_manager()

    class Meta:
        ordering = ["-publish_at", "-id"]
        indexes = [
            models.Index(fields=["status", "publish_at"]),
            # The home page asks for the newest few featured articles of many thousands.
            models.Index(
                fields=["-publish_at"], condition=models.Q(featured=True), name="article_featured"
            ),
        ]
        permissions = [("publish_article", "Can schedule, publish and unpublish articles")]

    def __str__(self) -> str:
        return self.headline

    def get_absolute_url(self) -> str:
        return reverse("articles:detail", kwargs={"slug": self.slug})

    @property
    def canonical_address(self) -> str:
        """The address search engines should index this article under."""
        return canonical_address(canonical_url=self.canonical_url, path=self.get_absolute_url())

    @property
    def is_public(self) -> bool:
        return (
            self.status in (self.Status.SCHEDULED, self.Status.PUBLISHED)
            and self.publish_at is not None
            and self.publish_at <= timezone.now()
        )

    @property
    def reading_minutes(self) -> int:
        words = len(strip_tags(self.body).split())
        return max(1, math.ceil(words / WORDS_PER_MINUTE))

    @property
    def was_revised(self) -> bool:
        return bool(
            self.revised_at
            and self.publish_at
            and (self.revised_at - self.publish_at).total_seconds() > 60
        )


class ArticleAuthor(models.Model):
    """An author's place in an article's byline."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="bylines")
    author = models.ForeignKey(Author, on_delete=models.PROTECT, related_name="bylines")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["article", "author"], name="byline_unique_author"),
        ]

    def __str__(self) -> str:
        # The admin heads each byline row with this.
        return self.author.name if self.author_id else ""


class ArticleRevision(models.Model):
    """A snapshot of an article's text, taken by the service on every save that changes it."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="revisions")
    headline = models.CharField(max_length=200)
    dek = models.CharField(max_length=400, blank=True)
    body = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        # Local time, as every other time in the admin (the history heads its rows with this).
        return f"{self.headline} ({self.saved_at_local:%Y-%m-%d %H:%M})"

    @property
    def saved_at_local(self) -> datetime:
        return timezone.localtime(self.created_at)


class ArticleImage(models.Model):
    """An image for article bodies: uploaded, validated and given renditions once."""

    image = models.ImageField(
        upload_to="body/%Y/%m/",
        validators=[validate_image_upload],
        width_field="width",
        height_field="height",
    )
    width = models.PositiveIntegerField(null=True, editable=False)
    height = models.PositiveIntegerField(null=True, editable=False)
    alt_text = models.CharField(
        max_length=300, help_text="Describe the image for readers who cannot see it."
    )
    caption = models.CharField(max_length=300, blank=True)
    credit = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, editable=False, on_delete=models.SET_NULL
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        # Whole: the admin's "added" message and lists show it, and a cut description
        # reads as a mistake.
        return self.alt_text or str(self.image.name)
