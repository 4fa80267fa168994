"""What the writer reads and writes per chunk of posts rather than per post.

An archive of 100,000 posts cannot afford a dozen queries a post. `PostChunk` reads,
for up to CHUNK_SIZE posts at once, what each post needs to know (its `ImportedItem`,
the stored article or page it became, which of the slugs it may take are taken) in a
few queries, and collects what can wait until the chunk is written, to write it with
one statement per table in `flush`:

- New articles, already sanitised and checked one by one (`article_import_check`, so
  an article the checks refuse fails alone before anything is written), are created
  together with their revisions, bylines, tags and `ImportedItem`s by
  `articles_import_create`, in one savepoint. Should the database refuse that batch,
  each of its articles is written again in a savepoint of its own: one bad post
  fails alone, the others are written. A post's outcome is reported (`PendingArticle`
  callbacks) only once it is written.
- Changed articles and pages are saved by the writer one by one, each in a savepoint;
  their `ImportedItem`s' new fingerprints are updated here in bulk.

Everything is written before the next chunk is read, inside the run's transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, models, transaction
from django.utils import timezone

from outlet.articles.models import Article, ArticleAuthor
from outlet.articles.services import RESERVED_SLUGS, articles_import_create
from outlet.pages.models import Page

from .models import ImportedItem
from .source import SourcePost
from .terms import free_slug

Kind = ImportedItem.Kind
CHUNK_SIZE = 500
#: The suffixed slugs read ahead per post (`base-<suffix>`, then -2, -3); rarer clashes
#: fall back to asking the database (`free_slug`).
SLUGS_AHEAD = 3


#: The slug a pending article holds until it is written (it has no pk yet).
PENDING = -1


@dataclass
class PendingArticle:
    """A new article checked and waiting for its chunk's bulk write."""

    post: SourcePost
    article: Article
    authors: list[Any]
    tags: list[Any]
    fingerprint: str
    note: str
    #: Called once the article is written (reports it, adds its redirects).
    written: Callable[[Article], None]
    #: Called with the reason when the database refused it.
    failed: Callable[[str], None]


def _kind(post: SourcePost) -> str:
    return Kind.ARTICLE if post.kind == "article" else Kind.PAGE


def slug_candidates(base: str, suffix: str) -> list[str]:
    return [base, f"{base}-{suffix}"] + [f"{base}-{suffix}-{n}" for n in range(2, 50)]


class PostChunk:
    """The shared reads and queued writes of one chunk of posts (see the module's doc)."""

    def __init__(self, *, source: str, posts: list[SourcePost], suffix_for: Any) -> None:
        self.source = source
        ids = {_kind(post): set[str]() for post in posts}
        for post in posts:
            ids[_kind(post)].add(post.source_id)
        self.mappings: dict[tuple[str, str], ImportedItem] = {}
        for kind, source_ids in ids.items():
            for item in ImportedItem.objects.filter(
                source=source, kind=kind, source_id__in=source_ids
            ):
                self.mappings[(kind, item.source_id)] = item
        self.articles = self._stored(Article, Kind.ARTICLE)
        self.pages = self._stored(Page, Kind.PAGE)
        self._taken: dict[type[models.Model], dict[str, int]] = {}
        for model in (Article, Page):
            wanted = {
                candidate
                for post in posts
                if _kind(post) == (Kind.ARTICLE if model is Article else Kind.PAGE)
                for candidate in slug_candidates(post.slug, suffix_for(post))[: SLUGS_AHEAD + 1]
            }
            self._taken[model] = dict(
                model._default_manager.filter(slug__in=wanted).values_list("slug", "pk")
            )
        self._pending: dict[tuple[str, str], PendingArticle] = {}
        self._new_items: list[ImportedItem] = []
        self._changed_items: list[ImportedItem] = []

    def _stored(self, model: type[models.Model], kind: str) -> dict[int, Any]:
        """The chunk's stored rows of `model`, locked until the run's transaction ends."""
        pks = [m.object_id for (k, _), m in self.mappings.items() if k == kind and m.object_id]
        if not pks:
            return {}
        return {
            row.pk: row for row in model._default_manager.select_for_update().filter(pk__in=pks)
        }

    def mapping(self, post: SourcePost) -> ImportedItem | None:
        key = (_kind(post), post.source_id)
        if key in self._pending:  # the same id twice in one chunk: the first goes first
            self.flush()
        return self.mappings.get(key)

    def stored(self, post: SourcePost) -> Any:
        """The article or page `post` became on an earlier run (or earlier in this one)."""
        mapping = self.mapping(post)
        if mapping is None or not mapping.object_id:
            return None
        rows = self.articles if post.kind == "article" else self.pages
        return rows.get(mapping.object_id)

    def free_slug(
        self, model: type[models.Model], base: str, *, own_pk: int | None, suffix: str
    ) -> str:
        """As `terms.free_slug`, from the slugs read ahead for the chunk (and those taken
        since); a clash past them asks the database."""
        taken = self._taken[model]
        for candidate in slug_candidates(base, suffix)[: SLUGS_AHEAD + 1]:
            holder = taken.get(candidate)
            if (holder is None or holder == own_pk) and candidate not in RESERVED_SLUGS:
                return candidate
        return free_slug(model, base, own_pk=own_pk, suffix=suffix)

    def saved(self, model: type[models.Model], *, row: Any, old_slug: str | None) -> None:
        """`row` now holds its slug (and no longer `old_slug`), for the rest of the chunk."""
        taken = self._taken[model]
        if old_slug and old_slug != row.slug and taken.get(old_slug) == row.pk:
            del taken[old_slug]
        taken[row.slug] = row.pk
        (self.articles if model is Article else self.pages)[row.pk] = row

    def create(self, pending: PendingArticle) -> None:
        """Queue a new, checked article for the chunk's bulk write; its slug is held."""
        self._pending[(Kind.ARTICLE, pending.post.source_id)] = pending
        self._taken[Article][pending.article.slug] = PENDING

    def _create(self, batch: list[PendingArticle]) -> list[ImportedItem]:
        """Write new articles with everything that belongs to them (in one savepoint)."""
        with transaction.atomic():
            note = batch[0].note
            articles_import_create(articles=[(p.article, len(p.authors)) for p in batch], note=note)
            ArticleAuthor.objects.bulk_create(
                ArticleAuthor(article=p.article, author=author, position=n)
                for p in batch
                for n, author in enumerate(dict.fromkeys(p.authors))
            )
            through = Article.tags.through
            through.objects.bulk_create(
                through(article_id=p.article.pk, tag_id=tag.pk)
                for p in batch
                for tag in dict.fromkeys(p.tags)
            )
            return ImportedItem.objects.bulk_create(
                [
                    ImportedItem(
                        source=self.source,
                        kind=Kind.ARTICLE,
                        source_id=p.post.source_id,
                        object_id=p.article.pk,
                        fingerprint=p.fingerprint,
                    )
                    for p in batch
                ]
            )

    def _pending_write(self) -> None:
        batch = list(self._pending.values())
        self._pending = {}
        if not batch:
            return
        try:
            written = list(zip(batch, self._create(batch), strict=True))
        except (DatabaseError, ValueError):
            written = []
            for pending in batch:
                pending.article.pk = None
                pending.article._state.adding = True
                try:
                    written += zip([pending], self._create([pending]), strict=True)
                except (DatabaseError, ValueError) as exc:
                    del self._taken[Article][pending.article.slug]
                    pending.failed(f"the database refused it: {exc}".strip())
        for pending, item in written:
            article = pending.article
            self._taken[Article][article.slug] = article.pk
            self.articles[article.pk] = article
            self.mappings[(Kind.ARTICLE, pending.post.source_id)] = item
            pending.written(article)

    def remember(self, post: SourcePost, *, object_id: int, fingerprint: str) -> None:
        """Queue what `post` became (or its new fingerprint); later posts of the run see it."""
        key = (_kind(post), post.source_id)
        item = self.mappings.get(key)
        if item is None:
            item = ImportedItem(
                source=self.source,
                kind=key[0],
                source_id=post.source_id,
                object_id=object_id,
                fingerprint=fingerprint,
            )
            self.mappings[key] = item
            self._new_items.append(item)
            return
        item.object_id, item.fingerprint, item.updated_at = object_id, fingerprint, timezone.now()
        if item.pk is not None:
            self._changed_items.append(item)

    def flush(self) -> None:
        """Write what the chunk queued: one statement per table."""
        self._pending_write()
        ImportedItem.objects.bulk_create(self._new_items)
        ImportedItem.objects.bulk_update(
            list(dict.fromkeys(self._changed_items)), ["object_id", "fingerprint", "updated_at"]
        )
        self._new_items, self._changed_items = [], []


def chunked(posts: Iterable[SourcePost], size: int = CHUNK_SIZE) -> Iterable[list[SourcePost]]:
    chunk: list[SourcePost] = []
    for post in posts:
        chunk.append(post)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
