"""Writing any source's `SourcePost`s as the site's articles and pages, idempotently.

Every object written is remembered as an `ImportedItem` under
`(source, kind, source_id)`: a second run finds it and updates it, or leaves it
alone when the converted values (their fingerprint) are the same, so running an
import twice changes nothing. Articles are saved through `article_import_save`, so
the sanitiser, the publication checks, revisions and renditions apply as they do
to an editor's save; the pages showing them change once, when the run ends. A post
the checks refuse to publish (an image without alt text) is kept as a draft with
the reason in the report, never dropped. Each item is written in a savepoint of
its own, so one bad item fails alone. Posts are written in chunks (chunks.py): what
each needs to know is read for the whole chunk at once, and its bylines, tags and
`ImportedItem` rows are written for the whole chunk at once. Old addresses
(`old_paths`, decided by the source's converter) point at an item's new address
only once it is public; they are written in batches, the first claim winning.
What editors did here since an import wrote an item wins over a later run: an item
deleted here is not brought back, one saved here (edited, taken down) is left as it
is, and the report says so.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags
from django.utils.text import slugify

from outlet.articles.models import Article, ArticleAuthor
from outlet.articles.services import (
    article_import_check,
    article_import_save,
    article_save,
    content_changed,
)
from outlet.core.site_url import canonical_url_validator
from outlet.pages.models import Page

from .chunks import PendingArticle, PostChunk, chunked
from .media import MediaLibrary, image_key
from .models import ImportedItem
from .records import imported_item_find, imported_item_remember
from .redirecting import RedirectBatch
from .report import ImportReport
from .source import SourcePost
from .terms import TermWriter

Kind = ImportedItem.Kind
PROGRESS_EVERY = 100
CANONICAL_MAX = Article._meta.get_field("canonical_url").max_length or 200


def _visible(article: Article) -> bool:
    """Public now or at its scheduled time (drafts are everything else)."""
    return article.status in (Article.Status.PUBLISHED, Article.Status.SCHEDULED)


DELETED_HERE = "deleted here since it was imported; not brought back"


def _changed_here(item: Article | Page, mapping: ImportedItem) -> bool:
    """Saved here since the import last wrote it (the import remembers after its save)."""
    return item.updated_at > mapping.updated_at


def _fingerprint(values: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()


def imported_canonical(url: str, *, old_hosts: Iterable[str]) -> tuple[str, str]:
    """The canonical address an imported piece keeps, and a note when one is dropped.

    A canonical naming the old site itself (its own permalink, the SEO plugin's
    default) is dropped: that address now redirects here, and keeping it would take
    the piece out of the sitemap. One that is not a full http(s) address is dropped
    with a note rather than failing the item.
    """
    url = (url or "").strip()
    if not url:
        return "", ""
    try:
        canonical_url_validator(url)
    except ValidationError:
        return "", f"its canonical address “{url[:120]}” is not a full web address; left out"

    def bare(host: str) -> str:
        return host.lower().removeprefix("www.")

    if bare(urlsplit(url).hostname or "") in {bare(h) for h in old_hosts if h}:
        return "", ""
    if len(url) > CANONICAL_MAX:
        return "", "its canonical address is too long to keep; left out"
    return url, ""


def _extra_fields(item: Article | Page, post: SourcePost) -> None:
    """Fields an import sets beyond the shared ones: the canonical address, and for
    an article whether it is featured (WordPress's sticky, Ghost's featured)."""
    item.canonical_url = post.canonical_url
    if isinstance(item, Article):
        item.featured = post.featured


def _copy(article: Article) -> Article:
    """Another instance of a stored article, to change while `article` keeps what is stored."""
    names = [field.attname for field in Article._meta.concrete_fields]
    return Article.from_db(article._state.db, names, [getattr(article, n) for n in names])


def post_label(post: SourcePost) -> str:
    return post.label or f"{post.kind} {post.source_id} ({post.slug or post.title[:40]})"


class PostWriter:
    """Writes one import's posts; `report` collects every outcome.

    `site_redirects` are the old site's own addresses (its feeds) and where they go
    here; `date_archive_prefix`, when given, points the old /2019/05/ and
    /2019/05/12/ archives (under that prefix) at this site's month.
    """

    def __init__(
        self,
        *,
        source: str,
        report: ImportReport,
        media: MediaLibrary,
        slug_suffix: str = "imported",
        since: dt.datetime | None = None,
        total: int = 0,
        progress: Callable[[int, int], None] | None = None,
        site_redirects: dict[str, str] | None = None,
        date_archive_prefix: str | None = None,
        items_read: Callable[[], int] | None = None,
    ) -> None:
        self.source = source
        self.report = report
        self.media = media
        self.since = since
        self.total = total
        self.progress = progress
        self.site_redirects = site_redirects or {}
        self.date_archive_prefix = date_archive_prefix
        #: How many entries of the input the posts came from so far (a source whose input
        #: holds more than posts counts progress in entries); else the posts are counted.
        self.items_read = items_read
        self.redirects = RedirectBatch(source=source, report=report)
        self.terms = TermWriter(
            source=source, report=report, redirects=self.redirects, slug_suffix=slug_suffix
        )
        self._archives: set[str] = set()
        #: The chunk being written (posts_write); None between chunks.
        self._chunk: PostChunk | None = None

    @property
    def chunk(self) -> PostChunk:
        assert self._chunk is not None, "posts are written by posts_write or post_write"
        return self._chunk

    def posts_write(self, posts: Iterable[SourcePost]) -> None:
        for old_path, target in self.site_redirects.items():
            self.redirects.add(old_path, target)
        reported = done = 0
        for posts_chunk in chunked(posts):
            self._chunk = PostChunk(
                source=self.source, posts=posts_chunk, suffix_for=self._slug_suffix
            )
            for post in posts_chunk:
                done += 1
                read = self.items_read() if self.items_read else done
                if read // PROGRESS_EVERY > reported // PROGRESS_EVERY:
                    reported = read
                    self._progress(read)
                self._post_write(post)
            self.chunk.flush()
            self._chunk = None
        read = self.items_read() if self.items_read else done
        if read != reported:
            self._progress(read)
        self.redirects.flush()
        # Pages (and authors, sections) are saved without article_save: once for the run,
        # so a page the source now keeps private leaves the cached pages too.
        content_changed()

    def _progress(self, read: int) -> None:
        if self.progress is not None:
            self.progress(read, max(read, self.total))

    def post_write(self, post: SourcePost) -> None:
        """Write one post on its own (posts_write writes many, a chunk at a time)."""
        self._chunk = PostChunk(source=self.source, posts=[post], suffix_for=self._slug_suffix)
        self._post_write(post)
        self.chunk.flush()
        self._chunk = None

    def _post_write(self, post: SourcePost) -> None:
        kind = "articles" if post.kind == "article" else "pages"
        label = post_label(post)
        if post.skipped_because:
            self.report.record(kind, "skipped", label=label, reason=post.skipped_because)
            with transaction.atomic():
                self._withdraw(post, label=label)
            return
        if post.failed_because:
            self.report.record(kind, "failed", label=label, reason=post.failed_because)
            return
        if self.since and post.publish_at and post.publish_at < self.since:
            return
        post.canonical_url, dropped = imported_canonical(
            post.canonical_url, old_hosts=[self.source.partition(":")[2]]
        )
        if dropped:
            post.notes.append(dropped)
        try:
            if post.kind == "article":
                self.article_write(post, label=label)
            else:
                with transaction.atomic():
                    self.page_write(post, label=label)
        except (ValidationError, ValueError) as exc:
            reason = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
            self.report.record(kind, "failed", label=label, reason=reason)

    def _withdraw(self, post: SourcePost, *, label: str) -> None:
        """An item an earlier run made public that the source has since withdrawn (put in
        its trash) is no longer public here either, unless it was changed here since."""
        model: type[Article] | type[Page] = Article if post.kind == "article" else Page
        kind = Kind.ARTICLE if post.kind == "article" else Kind.PAGE
        mapping = imported_item_find(source=self.source, kind=kind, source_id=post.source_id)
        if mapping is None or mapping.object_id is None:
            return
        item = model.objects.filter(pk=mapping.object_id).first()
        if item is None or _changed_here(item, mapping):
            return
        if isinstance(item, Article):
            if not _visible(item):
                return
            item.status = Article.Status.DRAFT
            article_save(article=item, note=f"Withdrawn at {self.source}")
        else:
            if item.status != Page.Status.PUBLISHED:
                return
            item.status = Page.Status.DRAFT
            item.save()
        # No fingerprint: should the source bring it back, the next run writes it again.
        imported_item_remember(
            source=self.source, kind=kind, source_id=post.source_id, object_id=item.pk
        )
        self.report.note(label, f"no longer public here: {post.skipped_because}")

    def _record_item(self, kind: str, outcome: str, *, public: bool, label: str) -> None:
        self.report.record(kind, outcome, label=label)
        if not public:
            self.report.record("drafts", outcome, label=label)

    def _kept_as_changed_here(self, kind: str, post: SourcePost, *, label: str) -> None:
        reason = "changed here since it was imported; left as it is"
        if post.status not in (Article.Status.PUBLISHED, Article.Status.SCHEDULED):
            reason += f" (no longer public at the source: {post.held_because or 'a draft'})"
        self.report.record(kind, "skipped", label=label, reason=reason)

    def _slug_suffix(self, post: SourcePost) -> str:
        return slugify(post.source_id)[:24] or "imported"

    def article_write(self, post: SourcePost, *, label: str) -> None:
        body = self.media.body_images(post.body, post.images, label=label)
        featured_image = post.featured_image
        values: dict[str, Any] = {
            "headline": (post.title or "").strip()[:200],
            "dek": strip_tags(post.excerpt).strip()[:400],
            "body": body,
            "status": post.status,
            "publish_at": post.publish_at,
            "section": [post.section.source_id] if post.section else [],
            "tags": [(t.source_id, t.name) for t in post.tags],
            "authors": [(p.source_id, p.name) for p in post.authors],
            "featured_image": image_key(featured_image) if featured_image else "",
            "featured_alt": featured_image.alt if featured_image else "",
            "media": self.media.active,
            "slug": post.slug,
            "seo_title": post.seo_title[:200],
            "seo_description": post.seo_description[:300],
            "featured": post.featured,
            "canonical_url": post.canonical_url,
        }
        fingerprint = _fingerprint(values)
        mapping = self.chunk.mapping(post)
        previous: Article | None = self.chunk.stored(post)
        if mapping is not None and previous is None:
            self.report.record("articles", "skipped", label=label, reason=DELETED_HERE)
            return
        # Resolved on every run, so an unchanged post still reports its people and terms.
        # Every section is public (the navigation, the sitemap): a draft's category is
        # not made one; the draft goes to the fallback section until it is published.
        source_section = post.section
        if (
            source_section is not None
            and post.status not in (Article.Status.PUBLISHED, Article.Status.SCHEDULED)
            and not self.terms.section_exists(source_section)
        ):
            post.notes.append(
                f"its category “{source_section.name}” is no section here (sections are "
                "public, it is a draft); filed under the fallback section"
            )
            source_section = None
        section = self.terms.section(source_section)
        authors = [self.terms.author(person) for person in post.authors]
        tag_rows = [self.terms.tag(term) for term in post.tags]
        stored = self.media.image(featured_image, label=label) if featured_image else ""
        if previous is not None and mapping is not None and mapping.fingerprint == fingerprint:
            self._record_item("articles", "unchanged", public=_visible(previous), label=label)
            self._article_redirects(previous, post)
            return
        if previous is not None and mapping is not None and _changed_here(previous, mapping):
            self._kept_as_changed_here("articles", post, label=label)
            self._article_redirects(previous, post)
            return
        outcome = "imported" if previous is None else "updated"
        article = _copy(previous) if previous is not None else Article()
        article.headline = values["headline"]
        article.dek = values["dek"]
        article.body = body
        article.section = section
        article.seo_title = values["seo_title"]
        article.seo_description = values["seo_description"]
        article.publish_at = post.publish_at
        article.slug = self.chunk.free_slug(
            Article, post.slug, own_pk=article.pk, suffix=self._slug_suffix(post)
        )
        notes: list[str] = []
        if article.slug != post.slug:
            notes.append(f"its address “{post.slug}” was taken; it is /{article.slug}/ here")
        if featured_image is not None and stored:
            if featured_image.alt.strip():
                article.featured_image = stored
                article.image_alt = featured_image.alt[:300]
                article.image_caption = strip_tags(featured_image.caption)[:300]
            else:
                notes.append(
                    "the featured image has no alt text at the source; add it with one in the admin"
                )
        _extra_fields(article, post)
        article.status = post.status
        held = post.held_because
        try:
            # The checks write nothing: a refused article is retried as a draft at once.
            article_import_check(article=article, author_count=len(authors))
        except ValidationError as exc:
            if article.status not in (Article.Status.PUBLISHED, Article.Status.SCHEDULED):
                raise
            held = " ".join(exc.messages)
            article.status = Article.Status.DRAFT
            article_import_check(article=article, author_count=len(authors))
        if held:
            notes.append(f"kept as a draft: {held}")
        notes += post.notes

        def written(article: Article) -> None:
            for message in notes:
                self.report.note(label, message)
            self._record_item("articles", outcome, public=_visible(article), label=label)
            self._article_redirects(article, post)

        note = f"Imported from {self.source}"
        if previous is None:
            self.chunk.create(
                PendingArticle(
                    post=post,
                    article=article,
                    authors=authors,
                    tags=tag_rows,
                    fingerprint=fingerprint,
                    note=note,
                    written=written,
                    failed=lambda reason: self.report.record(
                        "articles", "failed", label=label, reason=reason
                    ),
                )
            )
            return
        with transaction.atomic():
            article_import_save(
                article=article, previous=previous, author_count=len(authors), note=note
            )
            if [b.author_id for b in article.bylines.all()] != [a.pk for a in authors]:
                article.bylines.all().delete()
                ArticleAuthor.objects.bulk_create(
                    ArticleAuthor(article=article, author=author, position=n)
                    for n, author in enumerate(dict.fromkeys(authors))
                )
            article.tags.set(tag_rows)
        self.chunk.saved(Article, row=article, old_slug=previous.slug)
        self.chunk.remember(post, object_id=article.pk, fingerprint=fingerprint)
        written(article)

    def _article_redirects(self, article: Article, post: SourcePost) -> None:
        if _visible(article):
            target = article.get_absolute_url()
            for old_path in post.old_paths:
                self.redirects.add(old_path, target)
            self._date_archive_redirects(article)

    def _date_archive_redirects(self, article: Article) -> None:
        """The old /2019/05/ and /2019/05/12/ archives → this site's month, once each."""
        if self.date_archive_prefix is None or article.publish_at is None:
            return
        local = timezone.localtime(article.publish_at)
        day = f"{local:%Y-%m-%d}"
        if day in self._archives:
            return
        self._archives.add(day)
        prefix = self.date_archive_prefix
        month = reverse("articles:archive-month", kwargs={"year": local.year, "month": local.month})
        self.redirects.add(f"{prefix}/{local:%Y/%m}/", month)
        self.redirects.add(f"{prefix}/{local:%Y/%m/%d}/", month)
        self.redirects.add(f"{prefix}/{local:%Y}/", reverse("articles:archive"))

    def page_write(self, post: SourcePost, *, label: str) -> None:
        body = self.media.body_images(post.body, post.images, label=label)
        public = post.status == Article.Status.PUBLISHED
        values: dict[str, Any] = {
            "title": (post.title or "").strip()[:200],
            "body": body,
            "status": Page.Status.PUBLISHED if public else Page.Status.DRAFT,
            "slug": post.slug,
            "seo_title": post.seo_title[:200],
            "seo_description": post.seo_description[:300],
            "canonical_url": post.canonical_url,
        }
        fingerprint = _fingerprint(values)
        mapping = self.chunk.mapping(post)
        page: Page | None = self.chunk.stored(post)
        if mapping is not None and page is None:
            self.report.record("pages", "skipped", label=label, reason=DELETED_HERE)
            return
        if page is not None and mapping is not None and mapping.fingerprint == fingerprint:
            self._record_item("pages", "unchanged", public=public, label=label)
            self._page_redirects(page, post)
            return
        if page is not None and mapping is not None and _changed_here(page, mapping):
            self._kept_as_changed_here("pages", post, label=label)
            self._page_redirects(page, post)
            return
        outcome = "imported" if page is None else "updated"
        page = page or Page()
        for name in ("title", "body", "status", "seo_title", "seo_description"):
            setattr(page, name, values[name])
        old_slug = page.slug if page.pk else None
        page.slug = self.chunk.free_slug(
            Page, post.slug, own_pk=page.pk, suffix=self._slug_suffix(post)
        )
        _extra_fields(page, post)
        page.full_clean()
        page.save()
        self.chunk.saved(Page, row=page, old_slug=old_slug)
        self.chunk.remember(post, object_id=page.pk, fingerprint=fingerprint)
        if post.held_because:
            self.report.note(label, f"kept as a draft: {post.held_because}")
        for message in post.notes:
            self.report.note(label, message)
        self._record_item("pages", outcome, public=public, label=label)
        self._page_redirects(page, post)

    def _page_redirects(self, page: Page, post: SourcePost) -> None:
        if page.status == Page.Status.PUBLISHED:
            target = page.get_absolute_url()
            for old_path in post.old_paths:
                self.redirects.add(old_path, target)
