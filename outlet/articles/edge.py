"""What a shared HTTP cache in front of the site (Varnish, a CDN) may keep, and for how long.

Reader pages (`caching.public_page`) are the same bytes for every anonymous reader,
so a shared cache may hold them. Each names what it shows in a surrogate-key header
(EDGE_KEY_HEADER, `xkey` for Varnish's xkey vmod):

- `site` on every page (the masthead's sections, bylines, appeals, the sign-up box);
- `article-<id>` for the article and every article card it shows as related;
- `section-<id>`, `tag-<id>`, `author-<id>` on those pages and on article pages;
- `home`, `feeds`, `sitemap`, `archive`, `search` on those listings.

A change purges, after its transaction commits, the keys of what changed: an
article's own key, its section, tags and authors before and after the change, and
the listings every article is on (`article_keys`); a change to a section, author,
tag, appeal or newsletter purges `site`. The purge runs in a Celery task with
retries (tasks.edge_purge_task) through the configured purger (core.purgers). With
no purger configured nothing is queued and pages keep the browser-only header
(EDGE_CACHE_SECONDS is 0 unless set).

Readers with a session (staff, preview links) or a page that sets a cookie get
`private, no-store` and no keys: a shared cache must never keep them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from django.utils.cache import add_never_cache_headers

logger = logging.getLogger(__name__)

SITE_KEY = "site"
LISTING_KEYS = frozenset({"home", "feeds", "sitemap", "archive", "search"})
#: Browsers revalidate every time (cheap with the ETag), so a change reaches readers at once.
REVALIDATE = "public, max-age=0, must-revalidate"
_KEYS_ATTRIBUTE = "outlet_surrogate_keys"


#: Query parameters that only tell analytics where a reader came from: a page is the
#: same without them. Kept in step with deploy/varnish/outlet.vcl's vcl_recv.
TRACKING_PARAMETERS = frozenset(
    {"fbclid", "gclid", "gbraid", "wbraid", "dclid", "msclkid", "mc_cid", "mc_eid",
     "_ga", "_gl", "igshid", "yclid", "twclid"}
)  # fmt: skip


def query_normalise(query: str) -> str:
    """A page's query string without tracking parameters, sorted: one cached copy per
    page, whatever campaign link or parameter order brought the reader."""
    if not query:
        return query
    kept = [
        pair
        for pair in parse_qsl(query, keep_blank_values=True)
        if pair[0] not in TRACKING_PARAMETERS and not pair[0].startswith("utm_")
    ]
    return urlencode(sorted(kept))


def public_cache_control() -> str:
    """Cache-Control of a reader page: shared caches keep it EDGE_CACHE_SECONDS, serve it
    stale for EDGE_STALE_WHILE_REVALIDATE while fetching a new copy, and for
    EDGE_STALE_IF_ERROR when the origin fails; browsers revalidate every time."""
    seconds = settings.EDGE_CACHE_SECONDS
    if seconds <= 0:
        return REVALIDATE
    return (
        f"public, max-age=0, s-maxage={seconds}, "
        f"stale-while-revalidate={settings.EDGE_STALE_WHILE_REVALIDATE}, "
        f"stale-if-error={settings.EDGE_STALE_IF_ERROR}"
    )


def page_keys_add(request: HttpRequest, *keys: str) -> None:
    """Name what this page shows, for the surrogate-key header (see the module docstring)."""
    current = getattr(request, _KEYS_ATTRIBUTE, None)
    if current is None:
        current = set()
        setattr(request, _KEYS_ATTRIBUTE, current)
    current.update(keys)


def article_page_keys(request: HttpRequest, *, article, related: Iterable = ()) -> None:
    """An article page shows the article, its section, tags and authors, and related cards."""
    page_keys_add(
        request,
        f"article-{article.pk}",
        f"section-{article.section_id}",
        *(f"tag-{tag.pk}" for tag in article.tags.all()),
        *(f"author-{byline.author_id}" for byline in article.bylines.all()),
        *(f"article-{item.pk}" for item in related),
    )


def public_headers_set(request: HttpRequest, response: HttpResponseBase) -> bool:
    """Give a reader page its shared-cache headers; False if it must stay private.

    Private when the reader has a session (staff, preview), or when the response
    sets a cookie (a flash message read and cleared): such a page is this reader's.
    """
    if settings.SESSION_COOKIE_NAME in request.COOKIES or response.cookies:
        add_never_cache_headers(response)
        return False
    response["Cache-Control"] = public_cache_control()
    keys = getattr(request, _KEYS_ATTRIBUTE, None) or set()
    response[settings.EDGE_KEY_HEADER] = " ".join(sorted({SITE_KEY, *keys}))
    return True


def article_keys(*, article_ids: Iterable[int], public_only: bool = True) -> set[str]:
    """The keys of every page showing these articles, as the database says now.

    Only public articles are on any page, so a draft's edits purge nothing (`public_only`
    False is for articles known to have just gone public at their scheduled time).
    """
    from .models import Article, ArticleAuthor

    ids = list(article_ids)
    if not ids or not settings.EDGE_PURGER:
        return set()
    if public_only:
        ids = list(Article.objects.published().filter(pk__in=ids).values_list("pk", flat=True))
        if not ids:
            return set()
    keys = set(LISTING_KEYS) | {f"article-{pk}" for pk in ids}
    keys |= {
        f"section-{pk}"
        for pk in Article.objects.filter(pk__in=ids).values_list("section_id", flat=True)
    }
    keys |= {
        f"tag-{pk}"
        for pk in Article.tags.through.objects.filter(article_id__in=ids).values_list(
            "tag_id", flat=True
        )
    }
    keys |= {
        f"author-{pk}"
        for pk in ArticleAuthor.objects.filter(article_id__in=ids).values_list(
            "author_id", flat=True
        )
    }
    return keys


def edge_purge(*, keys: Iterable[str]) -> None:
    """Queue a purge of these keys at the shared cache, twice; nothing without a purger.

    Called after commit (services.content_changed), so the cache refetches pages the
    database already shows changed. A page whose render began before the commit can
    still reach the cache after the first purge (Varnish waits up to its
    first_byte_timeout for it), so the same keys are purged again
    EDGE_PURGE_REPEAT_SECONDS later. If the broker cannot take the task, the purge is
    sent from here at once (a few seconds at most) and logged: the editor's change is
    committed, and must not end in an error page or leave the old page up.
    """
    from kombu.exceptions import OperationalError

    from .tasks import edge_purge_task

    keys = sorted(set(keys))
    if not keys or not settings.EDGE_PURGER:
        return
    try:
        # On the `purge` queue (settings.CELERY_TASK_ROUTES), never behind a long import
        # on `default` nor in front of readers' mail.
        edge_purge_task.apply_async((keys,))
        edge_purge_task.apply_async((keys,), countdown=settings.EDGE_PURGE_REPEAT_SECONDS)
    except OperationalError as exc:
        logger.error("purge of %d keys could not be queued (%s); purged directly", len(keys), exc)
        edge_purge_now(keys=keys)


def edge_purge_now(*, keys: list[str]) -> None:
    """Purge in this process, for when the broker is down; a failure is logged, not raised."""
    from outlet.core.purgers import PurgeError, purger

    configured = purger()
    if configured is None:
        return
    try:
        configured.purge(keys)
    except PurgeError as exc:
        logger.error("direct purge of %d keys failed; pages expire in %ss: %s",
                     len(keys), settings.EDGE_CACHE_SECONDS, exc)  # fmt: skip
