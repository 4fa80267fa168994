"""The editors' admin. Roles are enforced here and in services, not by hidden buttons:

contributors see, preview and change only their own drafts and articles in
review, and can never choose a publishing status; editors and admins (the
`articles.publish_article` permission) can do everything. Every article save goes
through services.article_save.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .models import (
    Appeal,
    Article,
    ArticleAuthor,
    ArticleImage,
    ArticleRevision,
    Author,
    Section,
    Tag,
)
from .services import (
    article_delete,
    article_image_save,
    article_publication_problems,
    article_revision_restore,
    article_save,
    article_unpublish,
    articles_delete,
    articles_feature,
    content_changed,
    user_can_publish,
)
from .sharing import SHARE_LINK_LIFETIME, article_share_path

CONTRIBUTOR_STATUS_ERROR = (
    "Only editors can schedule, publish or unpublish. Choose “In review” to submit it."
)


class InvalidatesPagesAdmin(admin.ModelAdmin):
    """Saving or deleting here changes what readers see: start a new content version."""

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        content_changed()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        content_changed()

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, queryset)
        content_changed()


@admin.register(Section)
class SectionAdmin(InvalidatesPagesAdmin):
    list_display = ["name", "slug", "position"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Author)
class AuthorAdmin(InvalidatesPagesAdmin):
    list_display = ["name", "slug", "user"]
    search_fields = ["name"]
    prepopulated_fields = {"slug": ["name"]}
    autocomplete_fields = ["user"]


@admin.register(Tag)
class TagAdmin(InvalidatesPagesAdmin):
    search_fields = ["name"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Appeal)
class AppealAdmin(InvalidatesPagesAdmin):
    list_display = ["name", "heading", "is_default"]


class BylineInlineFormSet(BaseInlineFormSet):
    def get_form_kwargs(self, index: int | None) -> dict[str, Any]:
        kwargs = super().get_form_kwargs(index)
        if index is not None and index >= self.initial_form_count():
            # An empty row offers the next place, not a tie with the first author (bound
            # too: left untouched, it must still count as unchanged).
            kwargs.setdefault("initial", {"position": index})
        return kwargs

    def clean(self) -> None:
        super().clean()
        count = sum(
            1
            for form in self.forms
            if getattr(form, "cleaned_data", None)
            and form.cleaned_data.get("author")
            and not form.cleaned_data.get("DELETE")
        )
        # The article is saved before its bylines; tell the service how many it will have.
        self.instance._pending_author_count = count
        going_public = (Article.Status.SCHEDULED, Article.Status.PUBLISHED)
        if count == 0 and self.instance.status in going_public:
            raise ValidationError("Add at least one author before scheduling or publishing.")


class ArticleAuthorInline(admin.TabularInline):
    model = ArticleAuthor
    formset = BylineInlineFormSet
    extra = 1
    autocomplete_fields = ["author"]
    verbose_name = "author"
    verbose_name_plural = "Byline (in order)"


class ArticleRevisionInline(admin.TabularInline):
    model = ArticleRevision
    extra = 0
    fields = ["created_at", "created_by", "note", "headline", "open_link"]
    readonly_fields = ["created_at", "created_by", "note", "headline", "open_link"]
    can_delete = False
    max_num = 0
    show_change_link = False
    verbose_name_plural = "Revision history (newest first)"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="")
    def open_link(self, revision: ArticleRevision) -> str:
        url = reverse("admin:articles_article_revision", args=[revision.article_id, revision.pk])
        return format_html('<a href="{}">View or restore</a>', url)


class ArticleAdminForm(forms.ModelForm):
    """Runs the publication checks with the values as typed, so errors keep the input."""

    user: Any = None

    class Meta:
        model = Article
        fields = "__all__"  # noqa: DJ007 (the ModelAdmin's fieldsets choose the fields)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        status = cleaned.get("status")
        if status in Article.PUBLISHING_STATUSES and not user_can_publish(self.user):
            self.add_error("status", CONTRIBUTOR_STATUS_ERROR)
        return cleaned

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]
        problems = article_publication_problems(article=self.instance, author_count=None)
        for field, errors in problems.items():
            target = field if field in self.fields else None
            for error in errors:
                if target is None or target not in self.errors:
                    self.add_error(target, error)


@admin.register(Article)
class ArticleAdmin(admin.ModelAdmin):
    form = ArticleAdminForm
    list_display = [
        "headline", "section", "kind", "status", "featured", "publish_at", "created_by",
    ]  # fmt: skip
    list_filter = ["status", "featured", "kind", "section"]
    search_fields = ["headline", "dek"]
    prepopulated_fields = {"slug": ["headline"]}
    autocomplete_fields = ["tags"]
    inlines = [ArticleAuthorInline, ArticleRevisionInline]
    date_hierarchy = "publish_at"
    readonly_fields = ["preview_links", "featured_image_shown"]
    actions = ["publish_now", "unpublish_now", "feature", "unfeature"]
    fieldsets = [
        (None, {"fields": ["headline", "slug", "dek", "section", "kind", "body"]}),
        ("Workflow", {"fields": ["status", "publish_at", "featured", "preview_links"]}),
        (
            "Featured image",
            {
                "fields": [
                    "featured_image_shown",
                    "featured_image",
                    "image_alt",
                    "image_caption",
                    "image_credit",
                ]
            },
        ),
        (
            "Tags, appeal and search engines",
            {"fields": ["tags", "appeal", "seo_title", "seo_description", "canonical_url"]},
        ),
    ]

    class Media:
        css = {"all": ["css/admin-prose.css", "articles/admin-editor.css"]}

    # --- Roles -----------------------------------------------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet[Article]:
        queryset = super().get_queryset(request).select_related("section", "created_by")
        if user_can_publish(request.user):
            return queryset
        return queryset.filter(created_by=request.user)

    def has_change_permission(self, request: HttpRequest, obj: Article | None = None) -> bool:
        if not super().has_change_permission(request, obj):
            return False
        if obj is None or user_can_publish(request.user):
            return True
        return obj.created_by_id == request.user.pk and obj.status in (
            Article.Status.DRAFT,
            Article.Status.REVIEW,
        )

    def has_delete_permission(self, request: HttpRequest, obj: Article | None = None) -> bool:
        return super().has_delete_permission(request, obj) and user_can_publish(request.user)

    def has_publish_permission(self, request: HttpRequest) -> bool:
        return user_can_publish(request.user)

    def get_readonly_fields(self, request: HttpRequest, obj: Article | None = None):
        readonly = list(super().get_readonly_fields(request, obj))
        # The front page is an editor's choice (services.article_save refuses it too).
        return readonly if user_can_publish(request.user) else [*readonly, "featured"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        form.user = request.user  # type: ignore[attr-defined]
        return form

    def formfield_for_choice_field(self, db_field, request, **kwargs):
        if db_field.name == "status" and not user_can_publish(request.user):
            kwargs["choices"] = [
                (Article.Status.DRAFT.value, Article.Status.DRAFT.label),
                (Article.Status.REVIEW.value, Article.Status.REVIEW.label),
            ]
            kwargs["error_messages"] = {"invalid_choice": CONTRIBUTOR_STATUS_ERROR}
        return super().formfield_for_choice_field(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: Article, form, change: bool) -> None:
        article_save(
            article=obj,
            user=request.user,
            author_count=getattr(obj, "_pending_author_count", None),
        )

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        content_changed(articles=[form.instance])

    def delete_model(self, request: HttpRequest, obj: Article) -> None:
        article_delete(article=obj, user=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Article]) -> None:
        articles_delete(articles=queryset, user=request.user)

    # --- Links and actions -----------------------------------------------------

    @admin.display(description=_("Stored image"))
    def featured_image_shown(self, article: Article) -> str:
        # Stored files are named by their content; the picture says more than the name.
        if not article.featured_image:
            return "None yet."
        return format_html(
            '<img src="{}" alt="" width="240" class="featured-image-shown">',
            article.featured_image.url,
        )

    @admin.display(description=_("Preview"))
    def preview_links(self, article: Article) -> str:
        if not article.pk:
            return "Save the article to preview it."
        days = SHARE_LINK_LIFETIME.days
        return format_html(
            '<a href="{}" target="_blank">Preview on the site</a><br>'
            "Share a read-only preview for {} days: "
            '<input type="text" readonly size="70" value="{}{}">',
            reverse("articles:preview", args=[article.pk]),
            days,
            self._site_url,
            article_share_path(article=article),
        )

    @property
    def _site_url(self) -> str:
        from django.conf import settings

        return settings.SITE_URL

    @admin.action(description=_("Publish the selected articles now"), permissions=["publish"])
    def publish_now(self, request: HttpRequest, queryset: QuerySet[Article]) -> None:
        def publish(article: Article) -> None:
            article.status = Article.Status.PUBLISHED
            if article.publish_at is None or not article.is_public:
                article.publish_at = None
            article_save(article=article, user=request.user)

        self._each(request, queryset, publish, done="Published")

    @admin.action(description=_("Unpublish the selected articles now"), permissions=["publish"])
    def unpublish_now(self, request: HttpRequest, queryset: QuerySet[Article]) -> None:
        def unpublish(article: Article) -> None:
            article_unpublish(article=article, user=request.user)

        self._each(request, queryset, unpublish, done="Unpublished")

    @admin.action(description=_("Feature on the home page"), permissions=["publish"])
    def feature(self, request: HttpRequest, queryset: QuerySet[Article]) -> None:
        self._feature(request, queryset, featured=True)

    @admin.action(description=_("Stop featuring on the home page"), permissions=["publish"])
    def unfeature(self, request: HttpRequest, queryset: QuerySet[Article]) -> None:
        self._feature(request, queryset, featured=False)

    def _feature(self, request: HttpRequest, queryset, *, featured: bool) -> None:
        changed = articles_feature(articles=queryset, featured=featured, user=request.user)
        if featured:
            message = ngettext(
                "%(count)d article is now featured on the home page.",
                "%(count)d articles are now featured on the home page.",
                changed,
            )
        else:
            message = ngettext(
                "%(count)d article is no longer featured on the home page.",
                "%(count)d articles are no longer featured on the home page.",
                changed,
            )
        self.message_user(request, message % {"count": changed}, messages.SUCCESS)

    def _each(self, request: HttpRequest, queryset, change, *, done: str) -> None:
        """Apply `change` to each article; say how many changed and why any was refused."""
        changed, refused = 0, []
        for article in queryset:
            try:
                change(article)
                changed += 1
            except (ValidationError, PermissionDenied) as exc:
                refused.append(f"“{article.headline}”: {'; '.join(_messages(exc))}")
        if changed:
            self.message_user(request, f"{done} {changed} article(s).", messages.SUCCESS)
        for line in refused:
            self.message_user(request, line, messages.ERROR)

    # --- Revisions -------------------------------------------------------------

    def get_urls(self):
        return [
            path(
                "<int:article_id>/revision/<int:revision_id>/",
                self.admin_site.admin_view(self.revision_view),
                name="articles_article_revision",
            ),
            *super().get_urls(),
        ]

    def revision_view(
        self, request: HttpRequest, article_id: int, revision_id: int
    ) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied("You can't see articles.")
        article = get_object_or_404(self.get_queryset(request), pk=article_id)
        revision = get_object_or_404(ArticleRevision, pk=revision_id, article=article)
        can_restore = self.has_change_permission(request, article)
        if request.method == "POST":
            if not can_restore:
                raise PermissionDenied("You can't change this article.")
            try:
                article_revision_restore(revision=revision, user=request.user)
            except ValidationError as exc:
                for line in _messages(exc):
                    self.message_user(request, line, messages.ERROR)
            else:
                self.message_user(request, "The earlier version is restored.", messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:articles_article_change", args=[article.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Revision of {revision.saved_at_local:%Y-%m-%d %H:%M}",
            "opts": self.model._meta,
            "article": article,
            "revision": revision,
            "can_restore": can_restore,
        }
        return TemplateResponse(request, "articles/admin_revision.html", context)


def _messages(exc: ValidationError | PermissionDenied) -> list[str]:
    if isinstance(exc, ValidationError):
        return list(exc.messages)
    return [str(exc)]


@admin.register(ArticleImage)
class ArticleImageAdmin(admin.ModelAdmin):
    list_display = ["thumbnail", "alt_text", "caption", "created_at"]
    search_fields = ["alt_text", "caption"]
    readonly_fields = ["address"]
    fields = ["image", "alt_text", "caption", "credit", "address"]

    @admin.display(description="")
    def thumbnail(self, image: ArticleImage) -> str:
        return format_html('<img src="{}" alt="" width="120">', image.image.url)

    @admin.display(description=_("Address to paste into the editor's figure dialog"))
    def address(self, image: ArticleImage) -> str:
        if not image.pk:
            return "Save to get the address."
        return format_html('<input type="text" readonly size="70" value="{}">', image.image.url)

    def save_model(self, request, obj, form, change):
        article_image_save(image=obj, user=request.user)

    def get_urls(self):
        return [
            path(
                "picker/",
                self.admin_site.admin_view(self.picker_view),
                name="articles_articleimage_picker",
            ),
            *super().get_urls(),
        ]

    def picker_view(self, request: HttpRequest) -> HttpResponse:
        """The image library as the body editor's figure dialog opens it ("Browse…").

        A new image is uploaded here too, in the same window, and handed straight
        back to the dialog: no second tab, no reloading the library to find it.
        """
        if not self.has_view_permission(request):
            raise PermissionDenied("You can't see the image library.")
        can_upload = self.has_add_permission(request)
        upload_form_class = self.get_form(request, None, change=False)
        picked = None
        if request.method == "POST":
            if not can_upload:
                raise PermissionDenied("You can't add images to the library.")
            upload_form = upload_form_class(request.POST, request.FILES)
            if upload_form.is_valid():
                picked = article_image_save(image=upload_form.save(commit=False), user=request.user)
                upload_form = upload_form_class()
        else:
            upload_form = upload_form_class()
        images = list(self.get_queryset(request).exclude(pk=getattr(picked, "pk", None))[:60])
        context = {
            **self.admin_site.each_context(request),
            "title": "Choose an image",
            "opts": self.model._meta,
            "images": [picked, *images] if picked else images,
            "picked": picked,
            "upload_form": upload_form if can_upload else None,
            "callback": request.GET.get("CKEditorFuncNum", ""),
            "is_popup": True,
        }
        return TemplateResponse(request, "articles/admin_image_picker.html", context)
