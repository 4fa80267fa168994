"""Writes for publishing: saving articles through the workflow, revisions, images.

The admin, the demo loader and tests all save articles through `article_save`,
so sanitising, the role rules and the publication checks hold whoever saves.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from outlet.core.language import is_multilingual, language_q, site_languages

from .caching import content_version_bump
from .edge import SITE_KEY, article_keys, edge_purge
from .images import image_store_once, renditions_create
from .models import Article, ArticleAuthor, ArticleImage, ArticleRevision
from .sanitising import sanitise_body
from .signals import articles_taken_down

PUBLISH_PERMISSION = "articles.publish_article"
TEXT_FIELDS = ("headline", "dek", "body")
#: What a new translation starts from (the translator rewrites the text).
TRANSLATION_COPIED_FIELDS = (
    "headline", "dek", "body", "kind", "section", "featured_image", "image_alt",
    "image_caption", "image_credit", "seo_title", "seo_description", "appeal",
)  # fmt: skip
RESERVED_SLUGS = {
    "admin", "archive", "author", "donate", "feed", "media", "newsletter", "newsletters",
    "preview", "robots.txt", "search", "section", "share", "sitemap.xml", "static", "tag",
    "healthz", "csrf", "account", "n", "anymail", "_outbox", "page", "sitemap-news.xml", "jsi18n",
    # Answered by middleware before the URLconf (core/metrics/middleware.py).
    "metrics",
}  # fmt: skip

_IMG_TAG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_ALT = re.compile(r'\balt="([^"]*)"', re.IGNORECASE)


def _has_alt(img_tag: str) -> bool:
    match = _ALT.search(img_tag)
    return bool(match and match.group(1).strip())


def user_can_publish(user: Any) -> bool:
    return bool(user and user.has_perm(PUBLISH_PERMISSION))


def content_changed(*, articles: Iterable[Article] = ()) -> None:
    """Make every cached page stale once the current transaction commits.

    On commit, not before: a reader between the write and the commit would otherwise
    render the old content and cache it under the new version. `articles` names what
    changed, so a shared cache in front (see edge.py) purges only the pages showing
    them; without it (a section, author, tag, appeal or newsletter changed, which
    every page may show) the shared cache drops every page.
    """
    articles = list(articles)
    article_ids = [article.pk for article in articles if article.pk]
    groups = {article.translation_group for article in articles} - {None}
    if groups and is_multilingual():
        # Its translations' pages name it in their hreflang links and language switcher.
        article_ids += Article.objects.filter(translation_group__in=groups).values_list(
            "pk", flat=True
        )
    # Read before the change, so the pages of a section or tag it leaves are purged too.
    keys_before = article_keys(article_ids=article_ids) if article_ids else set()

    def purge() -> None:
        if not article_ids:
            edge_purge(keys={SITE_KEY})
        else:
            edge_purge(keys=keys_before | article_keys(article_ids=article_ids))

    # Robust: a failure in one (the cache or broker down) must neither skip the other
    # nor the callbacks queued after them, nor turn the committed change into a 500.
    transaction.on_commit(content_version_bump, robust=True)
    transaction.on_commit(purge, robust=True)


def article_publication_problems(
    *, article: Article, author_count: int | None = None
) -> dict[str, list[str]]:
    """What stops this article from going public, by field; empty when nothing does.

    Drafts and articles in review may be incomplete; scheduling and publishing need a
    complete article. Unpublishing does not: a takedown must never wait for an old
    article to be brought up to today's checks (alt text, bylines). `author_count`
    None skips the byline check (for forms that cannot see the bylines being saved
    beside them).
    """
    problems: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        problems.setdefault(field, []).append(message)

    # A language prefix in any case: /EN/ is taken as /en/ (core.language), never a slug.
    if article.slug in RESERVED_SLUGS or article.slug.lower() in site_languages():
        add(
            "slug",
            gettext("“%(slug)s” is an address the site already uses; choose another slug.")
            % {"slug": article.slug},
        )
    for message in article_language_problems(article=article):
        add("language", message)
    if article.status not in (Article.Status.SCHEDULED, Article.Status.PUBLISHED):
        return problems
    if not (article.headline or "").strip():
        add("headline", gettext("A headline is required before scheduling or publishing."))
    if article.status == Article.Status.SCHEDULED and article.publish_at is None:
        add("publish_at", gettext("Choose the date and time this article should go public."))
    if article.featured_image and not article.image_alt.strip():
        add("image_alt", gettext("Describe the featured image (alt text) before publishing."))
    missing_alt = [tag for tag in _IMG_TAG.findall(article.body or "") if not _has_alt(tag)]
    if missing_alt:
        add(
            "body",
            # The English keeps one wording for any count; translators get both forms.
            ngettext(
                "%(count)s image(s) in the body have no alt text. Edit each image and "
                "describe it before publishing.",
                "%(count)s image(s) in the body have no alt text. Edit each image and "
                "describe it before publishing.",
                len(missing_alt),
            )
            % {"count": len(missing_alt)},
        )
    if author_count is not None and author_count < 1:
        add("__all__", gettext("Add at least one author before scheduling or publishing."))
    return problems


def article_language_problems(*, article: Article) -> list[str]:
    """Why the article cannot be in its language: one the site does not publish in, or
    one another article of its translation group is already in (blank counts as the
    default language, which the database constraint cannot know)."""
    if article.language and article.language not in site_languages():
        return [gettext("Choose one of the site's languages.")]
    if article.translation_group is None:
        return []
    taken = (
        Article.objects.filter(translation_group=article.translation_group)
        .filter(language_q(article.language_code))
        .exclude(pk=article.pk)
    )
    if taken.exists():
        return [gettext("Another translation of this article is already in this language.")]
    return []


def article_translation_create(*, article: Article, language: str, user: Any = None) -> Article:
    """A draft copy of `article` in `language`, linked to it as its translation, for a
    translator to rewrite: text, section, bylines, tags, image and appeal carried over.

    Refused (ValidationError) for a language the site does not publish in or one the
    article's translation group already has.
    """
    if language not in site_languages():
        raise ValidationError(gettext("Choose one of the site's languages."))
    with transaction.atomic():
        article = Article.objects.select_for_update().get(pk=article.pk)
        if article.translation_group is None:
            article.translation_group = uuid.uuid4()
            article.save(update_fields=["translation_group"])
        group = Article.objects.filter(translation_group=article.translation_group)
        if group.filter(language_q(language)).exists():
            raise ValidationError(
                gettext("“%(headline)s” already has a translation in that language.")
                % {"headline": article.headline}
            )
        slug = base = f"{article.slug[:190]}-{language}"
        while Article.objects.filter(slug=slug).exists():
            slug = f"{base}-{uuid.uuid4().hex[:4]}"
        translation = Article(
            **{field: getattr(article, field) for field in TRANSLATION_COPIED_FIELDS},
            slug=slug,
            status=Article.Status.DRAFT,
            language=language,
            translation_group=article.translation_group,
        )
        translation = article_save(
            article=translation, user=user, author_count=0, note=f"Translation of #{article.pk}"
        )
        translation.tags.set(article.tags.all())
        ArticleAuthor.objects.bulk_create(
            ArticleAuthor(article=translation, author_id=byline.author_id, position=byline.position)
            for byline in article.bylines.all()
        )
    return translation


def article_edit_check(*, article: Article, user: Any) -> None:
    """Raise PermissionDenied unless this user may change this (saved) article."""
    if user is None or user_can_publish(user):
        return
    if article.created_by_id != user.pk:
        raise PermissionDenied(_("You can only edit articles you wrote."))
    if article.status not in (Article.Status.DRAFT, Article.Status.REVIEW):
        raise PermissionDenied(
            _("This article is scheduled or published; ask an editor to change it.")
        )


@transaction.atomic
def article_save(
    *, article: Article, user: Any = None, author_count: int | None = None, note: str = ""
) -> Article:
    """Save an article through the workflow: roles, sanitising, checks, revision.

    `user` None means the system (demo loader, commands). `author_count` is the
    number of bylines the article will have once saved, when the caller saves
    them after the article (the admin's inline); by default the saved bylines count.
    """
    previous = (
        Article.objects.select_for_update().filter(pk=article.pk).first() if article.pk else None
    )
    if previous is not None:
        article_edit_check(article=previous, user=user)
        content_changed(articles=[previous])  # before the save: the pages it is on now
    if (
        user is not None
        and not user_can_publish(user)
        and article.status in Article.PUBLISHING_STATUSES
    ):
        raise ValidationError(
            {"status": "Only editors can schedule, publish or unpublish. Submit it for review."}
        )
    if (
        user is not None
        and not user_can_publish(user)
        and article.featured != (previous.featured if previous is not None else False)
    ):
        raise ValidationError({"featured": FEATURE_PERMISSION_ERROR})

    article.body = sanitise_body(article.body)
    if article.status == Article.Status.PUBLISHED and article.publish_at is None:
        article.publish_at = timezone.now()
    if author_count is None:
        author_count = article.bylines.count() if article.pk else 0
    problems = article_publication_problems(article=article, author_count=author_count)
    if problems:
        raise ValidationError(problems)

    if article.created_by_id is None and user is not None and user.is_authenticated:
        article.created_by = user
    text_changed = previous is None or any(
        getattr(previous, field) != getattr(article, field) for field in TEXT_FIELDS
    )
    if text_changed and previous is not None and previous.is_public:
        article.revised_at = timezone.now()
    image_store_once(field_file=article.featured_image, folder="articles")
    image_changed = bool(article.featured_image) and (
        previous is None or previous.featured_image.name != article.featured_image.name
    )
    article.save()

    if text_changed:
        ArticleRevision.objects.create(
            article=article,
            headline=article.headline,
            dek=article.dek,
            body=article.body,
            created_by=user if user is not None and user.is_authenticated else None,
            note=note,
        )
    if image_changed:
        renditions_create(field_file=article.featured_image)
    if previous is None:
        content_changed(articles=[article])
    elif previous.is_public and not article.is_public:
        articles_taken_down.send(sender=Article, articles=[article])
    return article


def article_import_check(*, article: Article, author_count: int) -> None:
    """Sanitise an imported article and apply the publication checks, as `article_save`
    does for a system save; raises `ValidationError` (nothing is written either way)."""
    article.body = sanitise_body(article.body)
    if article.status == Article.Status.PUBLISHED and article.publish_at is None:
        article.publish_at = timezone.now()
    problems = article_publication_problems(article=article, author_count=author_count)
    if problems:
        raise ValidationError(problems)


def article_import_save(
    *, article: Article, previous: Article, author_count: int, note: str = ""
) -> Article:
    """Save a change to one imported article: `article_save`'s rules, at import speed.

    The same sanitiser and publication checks as `article_save` for a system save (no
    user), raising `ValidationError` before anything is written; a changed text still
    gets its revision, a new featured image its renditions, and a public article made
    non-public still sends `articles_taken_down`. What differs, and why:

    - `previous` is the stored row as the caller loaded it (an importer reads a chunk of
      rows at once, locked with `select_for_update`), not read again here; `article`
      is another instance of the same row, changed.
    - No `content_changed` per article: an import changes the whole site, so its caller
      calls `content_changed()` once when the run ends (one purge of every page instead
      of one per article).
    - No savepoint of its own: the caller wraps each item in one.

    New articles are created in bulk by `articles_import_create`.
    """
    article_import_check(article=article, author_count=author_count)
    text_changed = any(getattr(previous, field) != getattr(article, field) for field in TEXT_FIELDS)
    if text_changed and previous.is_public:
        article.revised_at = timezone.now()
    image_store_once(field_file=article.featured_image, folder="articles")
    image_changed = bool(article.featured_image) and (
        previous.featured_image.name != article.featured_image.name
    )
    article.save()
    if text_changed:
        ArticleRevision.objects.create(
            article=article,
            headline=article.headline,
            dek=article.dek,
            body=article.body,
            note=note,
        )
    if image_changed:
        renditions_create(field_file=article.featured_image)
    if previous.is_public and not article.is_public:
        articles_taken_down.send(sender=Article, articles=[article])
    return article


def articles_import_create(
    *, articles: Sequence[tuple[Article, int]], note: str = ""
) -> list[Article]:
    """Create an import's new articles, each with its number of bylines, in bulk.

    Each passes `article_import_check` first (the sanitiser and the publication checks;
    a `ValidationError` for any stops the whole call before anything is written, so
    callers check each beforehand to fail only that one). Then one INSERT for the
    articles and one for their first revisions; a featured image gets its renditions.
    As `article_import_save`, no `content_changed` per article and no savepoint: the
    caller owns both (bylines and tags are the caller's too, saved after this).
    """
    for article, author_count in articles:
        article_import_check(article=article, author_count=author_count)
        image_store_once(field_file=article.featured_image, folder="articles")
    created = Article.objects.bulk_create([article for article, _ in articles])
    ArticleRevision.objects.bulk_create(
        ArticleRevision(
            article=article,
            headline=article.headline,
            dek=article.dek,
            body=article.body,
            note=note,
        )
        for article in created
    )
    for article in created:
        if article.featured_image:
            renditions_create(field_file=article.featured_image)
    return created


FEATURE_PERMISSION_ERROR = _("Only editors choose what the home page features.")


@transaction.atomic
def articles_feature(*, articles: Iterable[Article], featured: bool, user: Any = None) -> int:
    """Feature articles on the home page, or stop; returns how many changed.

    Choosing the front is an editor's call. Featuring is not an edit of the text: no
    revision, and an older article that misses today's publication checks can still
    be featured or unfeatured. The pages showing them change once this commits.
    """
    if user is not None and not user_can_publish(user):
        raise PermissionDenied(str(FEATURE_PERMISSION_ERROR))
    changing = list(
        Article.objects.select_for_update()
        .filter(pk__in=[article.pk for article in articles])
        .exclude(featured=featured)
    )
    if not changing:
        return 0
    content_changed(articles=changing)
    Article.objects.filter(pk__in=[article.pk for article in changing]).update(
        featured=featured, updated_at=timezone.now()
    )
    return len(changing)


def article_revision_restore(*, revision: ArticleRevision, user: Any = None) -> Article:
    """Put an earlier version of the text back; the restore is itself a new revision."""
    article = revision.article
    article.headline = revision.headline
    article.dek = revision.dek
    article.body = revision.body
    stamp = revision.saved_at_local.strftime("%Y-%m-%d %H:%M")
    return article_save(article=article, user=user, note=f"Restored the version of {stamp}")


def article_image_save(*, image: ArticleImage, user: Any = None) -> ArticleImage:
    if image.uploaded_by_id is None and user is not None and user.is_authenticated:
        image.uploaded_by = user
    image_store_once(field_file=image.image, folder="body")
    image.save()
    renditions_create(field_file=image.image)
    return image


def article_unpublish(*, article: Article, user: Any = None) -> Article:
    """Take a public article down; it stays in the admin, as unpublished."""
    article.status = Article.Status.UNPUBLISHED
    return article_save(article=article, user=user, note="Unpublished")


@transaction.atomic
def articles_delete(*, articles: Any, user: Any = None) -> int:
    """Delete articles for good (a takedown); every page showing them changes on commit."""
    if user is not None and not user_can_publish(user):
        raise PermissionDenied(_("Only editors can delete articles."))
    doomed = list(Article.objects.select_for_update().filter(pk__in=[a.pk for a in articles]))
    content_changed(articles=doomed)  # reads what the pages showing them are, before they go
    articles_taken_down.send(sender=Article, articles=[a for a in doomed if a.is_public])
    for article in doomed:
        article.delete()
    return len(doomed)


def article_delete(*, article: Article, user: Any = None) -> int:
    return articles_delete(articles=[article], user=user)


GONE_LIVE_CURSOR_KEY = "articles:edge:gone-live-until"


def articles_gone_live_purge(*, now: Any = None) -> int:
    """Purge the shared cache's pages of articles whose scheduled time passed since the
    last run (beat runs this; the in-process page cache needs no help, see caching.py)."""
    from django.core.cache import cache

    now = now or timezone.now()
    since = cache.get(GONE_LIVE_CURSOR_KEY) or now - timedelta(minutes=10)
    ids = list(
        Article.objects.filter(
            status__in=[Article.Status.SCHEDULED, Article.Status.PUBLISHED],
            publish_at__gt=since,
            publish_at__lte=now,
        ).values_list("pk", flat=True)
    )
    if ids:
        edge_purge(keys=article_keys(article_ids=ids, public_only=False))
    cache.set(GONE_LIVE_CURSOR_KEY, now, None)
    return len(ids)
