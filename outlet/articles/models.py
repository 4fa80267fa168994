from __future__ import annotations

from django.db import models
from django.urls import reverse
from django.utils import timezone


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
    photo = models.ImageField(upload_to="authors/", blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("articles:author", kwargs={"slug": self.slug})


class Tag(models.Model):
    name = models.CharField(max_length=80, unique=True)
    slug = models.SlugField(max_length=80, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


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


class Article(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        REVIEW = "review", "In review"
        SCHEDULED = "scheduled", "Scheduled"
        PUBLISHED = "published", "Published"
        UNPUBLISHED = "unpublished", "Unpublished"

    class Kind(models.TextChoices):
        NEWS = "news", "News"
        ANALYSIS = "analysis", "Analysis"
        OPINION = "opinion", "Opinion"

    headline = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True)
    dek = models.CharField("dek", max_length=400, blank=True, help_text="The standfirst.")
    body = models.TextField(blank=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.ANALYSIS)
    section = models.ForeignKey(Section, on_delete=models.PROTECT, related_name="articles")
    authors = models.ManyToManyField(Author, through="ArticleAuthor", related_name="articles")
    tags = models.ManyToManyField(Tag, blank=True, related_name="articles")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    publish_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    featured_image = models.ImageField(upload_to="articles/%Y/%m/", blank=True)
    image_alt = models.CharField(max_length=300, blank=True)
    image_caption = models.CharField(max_length=300, blank=True)
    image_credit = models.CharField(max_length=200, blank=True)
    seo_title = models.CharField(max_length=200, blank=True)
    seo_description = models.CharField(max_length=300, blank=True)
    appeal = models.ForeignKey(Appeal, null=True, blank=True, on_delete=models.SET_NULL)

    objects = ArticleQuerySet.as_manager()

    class Meta:
        ordering = ["-publish_at", "-id"]
        indexes = [models.Index(fields=["status", "publish_at"])]

    def __str__(self) -> str:
        return self.headline

    def get_absolute_url(self) -> str:
        return reverse("articles:detail", kwargs={"slug": self.slug})


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
