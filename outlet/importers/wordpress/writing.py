"""Writing a WordPress export's items as the site's own objects, idempotently.

Every object written is remembered as an `ImportedItem` under
`(source, kind, source_id)`: a second run finds it and updates it, or leaves it
alone when the converted values (their fingerprint) are the same, so running an
import twice changes nothing. Articles are saved through `article_save`, so the
sanitiser, the publication checks, revisions and renditions apply as they do to
an editor's save. A post the checks refuse to publish (an image without alt text)
is kept as a draft with the reason in the report, never dropped.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags
from django.utils.text import slugify

from outlet.articles.models import Article, ArticleAuthor, Author, Section, Tag
from outlet.articles.services import RESERVED_SLUGS, article_save, content_changed
from outlet.pages.models import Page
from outlet.redirects.services import old_path_from_url, redirects_set

from ..models import ImportedItem
from ..records import imported_item_find, imported_item_remember
from ..report import ImportReport
from .converting import (
    SKIPPED_STATUSES,
    body_convert,
    date_parse,
    seo_fields,
    slug_derive,
    status_choose,
)
from .markup import Attachment
from .media import MediaLibrary
from .reading import CONTENT_TYPES, ExportIndex, Item, Person, Term

Kind = ImportedItem.Kind
FALLBACK_SECTION = ("archive", "Archive")
REDIRECT_BATCH = 500
PROGRESS_EVERY = 100


def _visible(article: Article) -> bool:
    """Public now or at its scheduled time (drafts are everything else)."""
    return article.status in (Article.Status.PUBLISHED, Article.Status.SCHEDULED)


def _fingerprint(values: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()


def _free_slug(model: type[models.Model], base: str, *, own_pk: int | None, suffix: str) -> str:
    """`base` if no other row of `model` has it, else `base-<suffix>` (then -2, -3…)."""
    candidates = [base, f"{base}-{suffix}"] + [f"{base}-{suffix}-{n}" for n in range(2, 50)]
    for candidate in candidates:
        taken = model._default_manager.filter(slug=candidate).exclude(pk=own_pk).exists()
        if not taken and candidate not in RESERVED_SLUGS:
            return candidate
    raise ValidationError(f"no free address for “{base}”")


class ExportWriter:
    """Writes one export's items; `report` collects every outcome."""

    def __init__(
        self,
        *,
        source: str,
        index: ExportIndex,
        report: ImportReport,
        media: MediaLibrary,
        now: dt.datetime,
        site_timezone: str,
        since: dt.datetime | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.source = source
        self.index = index
        self.report = report
        self.now = now
        self.site_timezone = site_timezone
        self.since = since
        self.progress = progress
        self.prefix = (urlsplit(index.blog_url or index.site_url).path or "").rstrip("/")
        self._done: dict[tuple[str, str], Any] = {}
        self.media = media
        self._by_parent: dict[int, list[Attachment]] | None = None
        self._redirected: set[str] = set()
        self._pending_redirects: dict[str, str] = {}

    # --- bookkeeping -----------------------------------------------------------------

    def _mapping(self, kind: str, source_id: str) -> ImportedItem | None:
        return imported_item_find(source=self.source, kind=kind, source_id=source_id)

    def _remember(
        self, kind: str, source_id: str, *, object_id: int | None, fingerprint: str = ""
    ) -> None:
        imported_item_remember(
            source=self.source,
            kind=kind,
            source_id=source_id,
            object_id=object_id,
            fingerprint=fingerprint,
        )

    def _redirect(self, old_path: str, target: str) -> None:
        """Point an old address here, once per run (the first item to claim it wins);
        written in batches (`redirects_flush`)."""
        if not old_path or old_path in self._redirected:
            return
        self._redirected.add(old_path)
        self._pending_redirects[old_path] = target
        if len(self._pending_redirects) >= REDIRECT_BATCH:
            self.redirects_flush()

    def redirects_flush(self) -> None:
        outcomes = redirects_set(targets=self._pending_redirects, source=self.source)
        self._pending_redirects = {}
        reasons = {
            "skipped": "the address already redirects elsewhere",
            "failed": "not an address a redirect can keep (too long, or not a path)",
        }
        for old_path, outcome in outcomes.items():
            if outcome != "same":
                label = old_path if len(old_path) < 120 else f"{old_path[:117]}…"
                self.report.record(
                    "redirects", outcome, label=label, reason=reasons.get(outcome, "")
                )

    # --- people, sections, tags --------------------------------------------------------

    def _named(self, kind: str, model: Any, source_id: str, *, name: str, slug: str) -> Any:
        """The row for a term or person, created once; its name follows the source's."""
        key = (kind, source_id)
        if key in self._done:
            return self._done[key]
        label = f"{kind} {source_id}"
        mapping = self._mapping(kind, source_id)
        row = model._default_manager.filter(pk=mapping.object_id).first() if mapping else None
        if row is None:
            row = model._default_manager.filter(slug=slug).first()
            if row is None or row.name != name:
                if model is not Author and model._default_manager.filter(name=name).exists():
                    row = model._default_manager.get(name=name)
                else:
                    row = model(name=name, slug=_free_slug(model, slug, own_pk=None, suffix="wp"))
                    row.save()
            self._remember(kind, source_id, object_id=row.pk)
            self.report.record(f"{kind}s", "imported", label=label)
        elif (
            row.name != name
            and not model._default_manager.filter(name=name).exclude(pk=row.pk).exists()
        ):
            row.name = name
            row.save(update_fields=["name"])
            self.report.record(f"{kind}s", "updated", label=label)
        else:
            self.report.record(f"{kind}s", "unchanged", label=label)
        self._done[key] = row
        return row

    def author(self, login: str) -> Author:
        person = self.index.people.get(login) or Person(login=login, display_name=login)
        author = self._named(
            Kind.AUTHOR,
            Author,
            login,
            name=person.display_name[:120],
            slug=slugify(login)[:120] or "author",
        )
        if (Kind.AUTHOR, f"redirect:{login}") not in self._done:
            self._done[Kind.AUTHOR, f"redirect:{login}"] = True
            self._redirect(f"{self.prefix}/author/{login}/", author.get_absolute_url())
            if person.author_id:
                self._redirect(
                    f"{self.prefix}/?author={person.author_id}", author.get_absolute_url()
                )
            self._redirect(
                f"{self.prefix}/author/{login}/feed/", f"{author.get_absolute_url()}feed/"
            )
        return author

    def _category_path(self, slug: str) -> str:
        parts: list[str] = []
        seen: set[str] = set()
        while slug and slug not in seen:
            seen.add(slug)
            parts.insert(0, slug)
            term = self.index.terms.get(("category", slug))
            slug = term.parent if term else ""
        return "/".join(parts)

    def section(self, slug: str | None) -> Section:
        if not slug:
            return self._named(
                Kind.SECTION, Section, "", name=FALLBACK_SECTION[1], slug=FALLBACK_SECTION[0]
            )
        term = self.index.terms.get(("category", slug)) or Term("category", slug, slug)
        section = self._named(
            Kind.SECTION, Section, slug, name=term.name[:80], slug=slugify(slug)[:80] or "section"
        )
        if (Kind.SECTION, f"redirect:{slug}") not in self._done:
            self._done[Kind.SECTION, f"redirect:{slug}"] = True
            old = f"{self.prefix}/category/{self._category_path(slug)}/"
            self._redirect(old, section.get_absolute_url())
            if term.term_id:
                self._redirect(f"{self.prefix}/?cat={term.term_id}", section.get_absolute_url())
            self._redirect(f"{old}feed/", f"{section.get_absolute_url()}feed/")
        return section

    def tag(self, slug: str, name: str) -> Tag:
        term = self.index.terms.get(("post_tag", slug)) or Term("post_tag", slug, name or slug)
        tag = self._named(
            Kind.TAG, Tag, slug, name=term.name[:80], slug=slugify(slug)[:80] or "tag"
        )
        if (Kind.TAG, f"redirect:{slug}") not in self._done:
            self._done[Kind.TAG, f"redirect:{slug}"] = True
            self._redirect(f"{self.prefix}/tag/{slug}/", tag.get_absolute_url())
            self._redirect(f"{self.prefix}/tag/{slug}/feed/", tag.get_absolute_url())
        return tag

    def site_redirects(self) -> None:
        """The old site's own feed addresses, to this site's feed."""
        for old in (
            "/?feed=rss2",
            "/?feed=rss",
            "/?feed=atom",
            "/feed/rss2/",
            "/feed/rss/",
            "/comments/feed/",
        ):
            self._redirect(f"{self.prefix}{old}", "/feed/atom/" if "atom" in old else "/feed/")

    # --- items ---------------------------------------------------------------------------

    def items_write(self, items: Iterable[Item]) -> None:
        self.site_redirects()
        for done, item in enumerate(items, start=1):
            if self.progress is not None and (
                done % PROGRESS_EVERY == 0 or done == self.index.items
            ):
                self.progress(done, self.index.items)
            name = item.slug or item.title[:40] or "untitled"
            label = f"{item.post_type or 'item'} {item.post_id} ({name})"
            if item.post_type not in CONTENT_TYPES:
                continue  # attachments, menus, revisions: read in the index or not content
            if item.status in SKIPPED_STATUSES:
                kind = "articles" if item.post_type == "post" else "pages"
                self.report.record(
                    kind, "skipped", label=label, reason=SKIPPED_STATUSES[item.status]
                )
                continue
            publish_at = date_parse(
                gmt=item.date_gmt, local=item.date, site_timezone=self.site_timezone
            )
            if self.since and publish_at and publish_at < self.since:
                continue
            kind = "articles" if item.post_type == "post" else "pages"
            try:
                with transaction.atomic():
                    if item.post_type == "post":
                        self.article_write(item, publish_at=publish_at, label=label)
                    else:
                        self.page_write(item, publish_at=publish_at, label=label)
            except (ValidationError, ValueError) as exc:
                reason = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
                self.report.record(kind, "failed", label=label, reason=reason)
        self.redirects_flush()
        # Pages (and authors, sections) are saved without article_save: once for the run,
        # so a page WordPress now keeps private leaves the cached pages too.
        content_changed()

    def _record_item(self, kind: str, outcome: str, *, public: bool, label: str) -> None:
        self.report.record(kind, outcome, label=label)
        if not public:
            self.report.record("drafts", outcome, label=label)

    def article_write(self, item: Item, *, publish_at: dt.datetime | None, label: str) -> None:
        body, conversion = body_convert(item.content, attachments=self.index.attachments)
        body = self.media.body_images(body, conversion.images, label=label)
        choice = status_choose(
            wp_status=item.status, password=item.password, publish_at=publish_at, now=self.now
        )
        categories = [t.slug for t in item.terms if t.taxonomy == "category" and t.slug]
        tags = [(t.slug, t.name) for t in item.terms if t.taxonomy == "post_tag" and t.slug]
        logins = [
            t.name or t.slug.removeprefix("cap-") for t in item.terms if t.taxonomy == "author"
        ]
        logins = list(dict.fromkeys(logins or ([item.creator] if item.creator else [])))
        thumbnail = (
            int(item.meta.get("_thumbnail_id") or 0)
            if (item.meta.get("_thumbnail_id") or "").isdigit()
            else 0
        )
        attachment = self.index.attachments.get(thumbnail)
        values: dict[str, Any] = {
            "headline": (item.title or "").strip()[:200],
            "dek": strip_tags(item.excerpt).strip()[:400],
            "body": body,
            "status": choice.status,
            "publish_at": publish_at,
            "section": categories[:1],
            "tags": tags,
            "authors": logins,
            "thumbnail": thumbnail,
            "media": bool(self.media.media_dir or self.media.media_from_site),
            "slug": slug_derive(slug=item.slug, title=item.title, post_id=item.post_id),
            **seo_fields(item.meta),
        }
        fingerprint = _fingerprint(values)
        mapping = self._mapping(Kind.ARTICLE, str(item.post_id))
        article = (
            Article.objects.filter(pk=mapping.object_id).first()
            if mapping and mapping.object_id
            else None
        )
        # Resolved on every run, so an unchanged post still reports its people and terms.
        section = self.section(categories[0] if categories else None)
        authors = [self.author(login) for login in logins]
        tag_rows = [self.tag(slug, name) for slug, name in tags]
        stored = self.media.image(thumbnail, label=label) if thumbnail else ""
        if article is not None and mapping is not None and mapping.fingerprint == fingerprint:
            self._record_item("articles", "unchanged", public=_visible(article), label=label)
            self._article_redirects(article, item)
            return
        outcome = "imported" if article is None else "updated"
        article = article or Article()
        article.headline = values["headline"]
        article.dek = values["dek"]
        article.body = body
        article.section = section
        article.seo_title = values["seo_title"]
        article.seo_description = values["seo_description"]
        article.publish_at = publish_at
        article.slug = _free_slug(
            Article, values["slug"], own_pk=article.pk, suffix=str(item.post_id)
        )
        if article.slug != values["slug"]:
            self.report.note(
                label, f"its address “{values['slug']}” was taken; it is /{article.slug}/ here"
            )
        if thumbnail:
            if stored and attachment is not None and attachment.alt.strip():
                article.featured_image = stored
                article.image_alt = attachment.alt[:300]
                article.image_caption = strip_tags(attachment.caption)[:300]
            elif stored:
                self.report.note(
                    label,
                    "the featured image has no alt text in WordPress; add it with one in the admin",
                )
        article.status = choice.status
        held = choice.held_because
        try:
            with transaction.atomic():
                article_save(
                    article=article, author_count=len(authors), note=f"Imported from {self.source}"
                )
        except ValidationError as exc:
            if article.status not in (Article.Status.PUBLISHED, Article.Status.SCHEDULED):
                raise
            held = " ".join(exc.messages)
            article.status = Article.Status.DRAFT
            article_save(
                article=article, author_count=len(authors), note=f"Imported from {self.source}"
            )
        if held:
            self.report.note(label, f"kept as a draft: {held}")
        if [b.author_id for b in article.bylines.all()] != [a.pk for a in authors]:
            article.bylines.all().delete()
            ArticleAuthor.objects.bulk_create(
                ArticleAuthor(article=article, author=author, position=n)
                for n, author in enumerate(authors)
            )
        article.tags.set(tag_rows)
        self._remember(
            Kind.ARTICLE, str(item.post_id), object_id=article.pk, fingerprint=fingerprint
        )
        for message in conversion.notes:
            self.report.note(label, message)
        if item.sticky:
            self.report.note(label, "sticky on WordPress: feature it on the home page by hand")
        self._record_item("articles", outcome, public=_visible(article), label=label)
        self._article_redirects(article, item)

    def _article_redirects(self, article: Article, item: Item) -> None:
        if _visible(article):
            target = article.get_absolute_url()
            self._redirect(old_path_from_url(item.link), target)
            self._redirect(f"{self.prefix}/?p={item.post_id}", target)
            self._date_archive_redirects(article)
            # The pages of images uploaded to this post lead to the post.
            for attachment in self._attachments_by_parent().get(item.post_id, []):
                self._redirect(old_path_from_url(attachment.link), target)
                self._redirect(f"{self.prefix}/?attachment_id={attachment.post_id}", target)

    def _date_archive_redirects(self, article: Article) -> None:
        """WordPress's /2019/05/ and /2019/05/12/ archives → this site's month, once each."""
        if article.publish_at is None:
            return
        local = timezone.localtime(article.publish_at)
        key = (Kind.ARTICLE, f"archive:{local:%Y-%m-%d}")
        if key in self._done:
            return
        self._done[key] = True
        month = reverse("articles:archive-month", kwargs={"year": local.year, "month": local.month})
        self._redirect(f"{self.prefix}/{local:%Y/%m}/", month)
        self._redirect(f"{self.prefix}/{local:%Y/%m/%d}/", month)
        self._redirect(f"{self.prefix}/{local:%Y}/", reverse("articles:archive"))

    def _attachments_by_parent(self) -> dict[int, list[Attachment]]:
        if self._by_parent is None:
            self._by_parent = {}
            for attachment in self.index.attachments.values():
                if attachment.parent_id and attachment.link:
                    self._by_parent.setdefault(attachment.parent_id, []).append(attachment)
        return self._by_parent

    def page_write(self, item: Item, *, publish_at: dt.datetime | None, label: str) -> None:
        body, conversion = body_convert(item.content, attachments=self.index.attachments)
        body = self.media.body_images(body, conversion.images, label=label)
        choice = status_choose(
            wp_status=item.status, password=item.password, publish_at=publish_at, now=self.now
        )
        public = choice.status == Article.Status.PUBLISHED
        values: dict[str, Any] = {
            "title": (item.title or "").strip()[:200],
            "body": body,
            "status": Page.Status.PUBLISHED if public else Page.Status.DRAFT,
            "slug": slug_derive(slug=item.slug, title=item.title, post_id=item.post_id),
            **seo_fields(item.meta),
        }
        fingerprint = _fingerprint(values)
        mapping = self._mapping(Kind.PAGE, str(item.post_id))
        page = (
            Page.objects.filter(pk=mapping.object_id).first()
            if mapping and mapping.object_id
            else None
        )
        if page is not None and mapping is not None and mapping.fingerprint == fingerprint:
            self._record_item("pages", "unchanged", public=public, label=label)
            self._page_redirects(page, item)
            return
        outcome = "imported" if page is None else "updated"
        page = page or Page()
        for name in ("title", "body", "status", "seo_title", "seo_description"):
            setattr(page, name, values[name])
        page.slug = _free_slug(Page, values["slug"], own_pk=page.pk, suffix=str(item.post_id))
        page.full_clean()
        page.save()
        self._remember(Kind.PAGE, str(item.post_id), object_id=page.pk, fingerprint=fingerprint)
        if choice.held_because:
            self.report.note(label, f"kept as a draft: {choice.held_because}")
        for message in conversion.notes:
            self.report.note(label, message)
        self._record_item("pages", outcome, public=public, label=label)
        self._page_redirects(page, item)

    def _page_redirects(self, page: Page, item: Item) -> None:
        if page.status == Page.Status.PUBLISHED:
            target = page.get_absolute_url()
            self._redirect(old_path_from_url(item.link), target)
            self._redirect(f"{self.prefix}/?page_id={item.post_id}", target)
