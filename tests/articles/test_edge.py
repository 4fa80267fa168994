"""Pages a shared cache (Varnish, a CDN) can hold, named by surrogate keys, and purged
after every change that reaches readers."""

from __future__ import annotations

import http.server
import threading
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from outlet.articles.models import Article
from outlet.articles.services import (
    article_save,
    article_unpublish,
    articles_feature,
    articles_gone_live_purge,
)
from outlet.core.purgers import HttpPurger, PurgeError, Purger, VarnishPurger
from tests.factories import ArticleFactory, AuthorFactory, SectionFactory, TagFactory

pytestmark = pytest.mark.django_db


class RecordingPurger(Purger):
    purged: list[set[str]] = []

    def purge(self, keys: list[str]) -> None:
        RecordingPurger.purged.append(set(keys))


@pytest.fixture
def edge(settings):
    """A purger configured, purge tasks run at once (eagerly) and recorded."""
    from outlet.celery import app

    settings.EDGE_PURGER = "tests.articles.test_edge.RecordingPurger"
    settings.EDGE_CACHE_SECONDS = 600
    RecordingPurger.purged = []
    app.conf.task_always_eager = True
    yield RecordingPurger.purged
    app.conf.task_always_eager = False


def keys_of(response) -> set[str]:
    return set(response["xkey"].split())


def test_reader_pages_tell_a_shared_cache_how_long_and_what_they_show(edge, client):
    tag, author = TagFactory(), AuthorFactory()
    article = ArticleFactory(authors=[author])
    article.tags.set([tag])
    related = ArticleFactory(section=article.section)

    page = client.get(article.get_absolute_url())

    assert page["Cache-Control"] == (
        "public, max-age=0, s-maxage=600, stale-while-revalidate=30, stale-if-error=86400"
    )
    assert keys_of(page) >= {
        "site", f"article-{article.pk}", f"section-{article.section_id}",
        f"tag-{tag.pk}", f"author-{author.pk}", f"article-{related.pk}",
    }  # fmt: skip
    assert not page.cookies
    assert "home" in keys_of(client.get("/"))
    assert "feeds" in keys_of(client.get("/feed/"))
    assert "sitemap" in keys_of(client.get("/sitemap.xml"))
    assert f"section-{article.section_id}" in keys_of(
        client.get(f"/section/{article.section.slug}/")
    )
    assert f"tag-{tag.pk}" in keys_of(client.get(f"/tag/{tag.slug}/"))
    assert f"author-{author.pk}" in keys_of(client.get(f"/author/{author.slug}/"))
    assert "search" in keys_of(client.get("/search/?q=headline"))
    assert "archive" in keys_of(client.get("/archive/"))
    cached = client.get(article.get_absolute_url())  # from the page cache: same headers
    assert cached["Cache-Control"] == page["Cache-Control"] and keys_of(cached) == keys_of(page)


def test_without_a_purger_pages_keep_the_browser_only_header(client):
    article = ArticleFactory()

    assert client.get(article.get_absolute_url())["Cache-Control"] == (
        "public, max-age=0, must-revalidate"
    )


def test_staff_and_readers_with_a_session_get_private_pages(edge, client, editor):
    article = ArticleFactory()
    client.force_login(editor)

    page = client.get(article.get_absolute_url())

    assert "private" in page["Cache-Control"] and "no-store" in page["Cache-Control"]
    assert not page.has_header("xkey")


def test_a_signed_in_editor_never_gets_the_page_cached_for_the_public(edge, client, editor):
    article = ArticleFactory()
    public = Client().get(article.get_absolute_url())  # an anonymous reader: now stored
    assert "public" in public["Cache-Control"] and public.has_header("xkey")
    assert Client().get(article.get_absolute_url())["ETag"] == public["ETag"]  # served stored
    client.force_login(editor)

    page = client.get(article.get_absolute_url())

    assert "private" in page["Cache-Control"] and "no-store" in page["Cache-Control"]
    assert "public" not in page["Cache-Control"] and "s-maxage" not in page["Cache-Control"]
    assert not page.has_header("xkey") and not page.has_header("ETag")


def test_a_page_that_sets_a_cookie_is_never_public(edge, client):
    from django.contrib.messages.storage.cookie import CookieStorage
    from django.http import HttpRequest, HttpResponse

    article = ArticleFactory()
    # A flash message waiting in its cookie: the page shows it and clears the cookie.
    storage = CookieStorage(HttpRequest())
    storage.add(20, "Thank you for your gift.")
    response = HttpResponse()
    storage.update(response)
    client.cookies["messages"] = response.cookies["messages"].value

    page = client.get(article.get_absolute_url())

    assert "Thank you for your gift." in page.content.decode()
    assert "private" in page["Cache-Control"] and not page.has_header("xkey")
    assert "Thank you" not in Client().get(article.get_absolute_url()).content.decode()


def test_an_edit_purges_the_pages_of_the_article_before_and_after_it_moved(
    edge, editor, django_capture_on_commit_callbacks
):
    old_section, new_section = SectionFactory(), SectionFactory()
    article = ArticleFactory(section=old_section)

    article.section = new_section
    with django_capture_on_commit_callbacks(execute=True):
        article_save(article=article, user=editor)

    purged = set().union(*edge)
    assert {f"article-{article.pk}", f"section-{old_section.pk}", f"section-{new_section.pk}",
            "home", "feeds", "sitemap", "archive", "search"} <= purged  # fmt: skip


def test_featuring_purges_the_home_page_at_the_shared_cache(
    edge, editor, django_capture_on_commit_callbacks
):
    article = ArticleFactory()

    with django_capture_on_commit_callbacks(execute=True):
        articles_feature(articles=[article], featured=True, user=editor)

    assert {"home", f"article-{article.pk}"} <= set().union(*edge)


def test_a_drafts_edits_purge_nothing(edge, editor, django_capture_on_commit_callbacks):
    draft = ArticleFactory(status=Article.Status.DRAFT, publish_at=None)

    draft.headline = "Still a draft"
    with django_capture_on_commit_callbacks(execute=True):
        article_save(article=draft, user=editor)

    assert edge == []


def test_nothing_is_purged_before_the_commit(edge, django_capture_on_commit_callbacks):
    article = ArticleFactory()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        article_unpublish(article=article)
        assert edge == []
    for callback in callbacks:
        callback()

    assert f"article-{article.pk}" in set().union(*edge)


def test_a_section_change_purges_every_page(edge, editor, django_capture_on_commit_callbacks):
    section = SectionFactory()
    admin = Client()
    admin.force_login(editor)

    with django_capture_on_commit_callbacks(execute=True):
        admin.post(
            f"/admin/articles/section/{section.pk}/change/",
            {"name": "Renamed", "slug": section.slug, "description": "", "position": 0},
        )

    assert {"site"} in edge


def test_scheduled_article_going_live_purges_its_pages_once(edge):
    article = ArticleFactory(
        status=Article.Status.SCHEDULED, publish_at=timezone.now() + timedelta(minutes=1)
    )
    assert articles_gone_live_purge() == 0

    assert articles_gone_live_purge(now=timezone.now() + timedelta(minutes=2)) == 1
    assert f"article-{article.pk}" in set().union(*edge)
    assert articles_gone_live_purge(now=timezone.now() + timedelta(minutes=3)) == 0


class _Recorder(http.server.BaseHTTPRequestHandler):
    requests: list[tuple[str, dict, bytes]] = []
    status = 200

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        _Recorder.requests.append((self.command, dict(self.headers), self.rfile.read(length)))
        self.send_response(_Recorder.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_PURGE = do_POST = _record  # noqa: N815

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def recorder():
    _Recorder.requests, _Recorder.status = [], 200
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_varnish_purger_sends_the_keys_to_xkey(recorder):
    VarnishPurger([recorder]).purge(["article-1", "home"])

    method, headers, _ = _Recorder.requests[0]
    assert method == "PURGE" and headers["xkey-purge"] == "article-1 home"


def test_http_purger_posts_the_keys_for_a_cdn_adapter(recorder):
    import json

    HttpPurger([recorder], "s3cret").purge(["article-1"])

    method, headers, body = _Recorder.requests[0]
    assert method == "POST" and headers["Authorization"] == "Bearer s3cret"
    assert json.loads(body) == {"keys": ["article-1"]}


def test_a_refused_purge_is_retried(recorder, settings):
    from celery.exceptions import Retry

    from outlet.articles.tasks import edge_purge_task

    settings.EDGE_PURGER, settings.EDGE_PURGE_URLS = "varnish", [recorder]
    _Recorder.status = 503
    with pytest.raises(PurgeError):
        VarnishPurger([recorder]).purge(["home"])
    with pytest.raises(Retry):
        edge_purge_task.apply(args=[["home"]], throw=True).get()


@pytest.mark.parametrize(
    "path",
    ["/", "ARTICLE", "/section/politics/", "/tag/quarries/", "/author/ada/", "/archive/",
     "ARCHIVE_MONTH", "/search/?q=quarry", "/feed/", "/feed/atom/", "/section/politics/feed/",
     "/author/ada/feed/", "/sitemap.xml", "/sitemap-news.xml"],
)  # fmt: skip
def test_every_reader_page_is_the_same_for_every_anonymous_reader(edge, path, settings):
    from tests.factories import NewsletterFactory

    settings.CACHE_MIDDLEWARE_SECONDS = 0  # two renders, not a render and its cached copy
    NewsletterFactory()
    article = ArticleFactory(
        slug="quarry",
        headline="The quarry",
        section=SectionFactory(slug="politics"),
        authors=[AuthorFactory(slug="ada")],
    )
    article.tags.set([TagFactory(slug="quarries")])
    month = article.publish_at.astimezone()
    path = {
        "ARTICLE": article.get_absolute_url(),
        "ARCHIVE_MONTH": f"/archive/{month.year}/{month.month}/",
    }.get(path, path)
    first, second = Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)

    one, two = first.get(path), second.get(path)

    assert one.status_code == two.status_code == 200
    assert one.content == two.content
    assert not one.cookies and not two.cookies
    assert one["Cache-Control"].startswith("public, max-age=0, s-maxage=600")
    assert "site" in keys_of(one) and "Cookie" not in one.get("Vary", "")
    assert one["Content-Security-Policy"] == two["Content-Security-Policy"]
    assert "nonce" not in one["Content-Security-Policy"]


def test_a_failed_purge_is_retried_until_the_pages_would_have_expired_anyway(
    recorder, settings, caplog
):
    from celery.exceptions import Retry

    from outlet.articles.tasks import edge_purge_task

    settings.EDGE_PURGER, settings.EDGE_PURGE_URLS = "varnish", [recorder]
    settings.EDGE_CACHE_SECONDS = 3600
    _Recorder.status = 503

    with pytest.raises(Retry):  # an hour in: the old pages may still be cached
        edge_purge_task.apply(args=[["home"]], retries=60, throw=True).get()
    edge_purge_task.apply(args=[["home"]], retries=80, throw=True).get()  # past it: given up

    assert "failed for good" in caplog.text


def test_a_broker_outage_purges_at_once_and_spares_the_editor_an_error(
    edge, editor, django_capture_on_commit_callbacks, monkeypatch, caplog
):
    from kombu.exceptions import OperationalError

    from outlet.articles.caching import content_version
    from outlet.articles.tasks import edge_purge_task

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(edge_purge_task, "apply_async", broker_down)
    article = ArticleFactory()
    version_before = content_version()

    article.headline = "Corrected"
    with django_capture_on_commit_callbacks(execute=True):
        article_save(article=article, user=editor)

    assert f"article-{article.pk}" in set().union(*edge)
    assert content_version() != version_before
    assert "purged directly" in caplog.text


def test_a_purge_is_queued_twice_the_second_after_any_render_begun_before_the_commit(
    edge, editor, settings, django_capture_on_commit_callbacks, monkeypatch
):
    from outlet.articles.tasks import edge_purge_task

    settings.EDGE_PURGE_REPEAT_SECONDS = 45
    queued: list[dict] = []
    monkeypatch.setattr(
        edge_purge_task, "apply_async", lambda args, **options: queued.append(options)
    )
    article = ArticleFactory()

    with django_capture_on_commit_callbacks(execute=True):
        article_unpublish(article=article, user=editor)

    assert [options.get("countdown") for options in queued] == [None, 45]
    assert {_queue_of(edge_purge_task, options) for options in queued} == {"purge"}


def test_tracking_parameters_and_order_do_not_split_the_page_cache(
    client, django_assert_num_queries
):
    ArticleFactory()
    client.get("/search/?q=quarry&page=1&utm_source=newsletter")

    with django_assert_num_queries(0):
        cached = client.get("/search/?fbclid=abc&page=1&q=quarry&gclid=x")

    assert cached.status_code == 200
    assert b"fbclid" not in cached.content


def _queue_of(task, options: dict) -> str:
    """The queue Celery puts this task on, as apply_async would route it."""
    from outlet.celery import app

    merged = {**task._get_exec_options(), **options}
    return app.amqp.router.route(merged, task.name, (), {})["queue"].name


def test_purges_have_a_queue_of_their_own_apart_from_readers_mail(settings, monkeypatch):
    """A Varnish outage fills the purge queue with retries: sign-in links and receipts,
    on `mail`, never wait behind them."""
    from outlet.articles.edge import edge_purge
    from outlet.articles.tasks import edge_purge_task
    from outlet.donations.tasks import donor_email_send_task
    from outlet.readers.tasks import reader_sign_in_send_task

    settings.EDGE_PURGER = "tests.articles.test_edge.RecordingPurger"
    queued: list[dict] = []
    monkeypatch.setattr(
        edge_purge_task, "apply_async", lambda args, **options: queued.append(options)
    )

    edge_purge(keys=["article-1"])

    assert len(queued) == 2
    assert {_queue_of(edge_purge_task, options) for options in queued} == {"purge"}
    assert _queue_of(reader_sign_in_send_task, {}) == "mail"
    assert _queue_of(donor_email_send_task, {}) == "mail"


def test_the_stacks_worker_consumes_every_queue_tasks_are_sent_to():
    from outlet.celery import app
    from outlet.core.management.commands.runstack import WORKER_QUEUES

    declared = {queue.name for queue in app.conf.task_queues}
    assert "purge" in declared
    assert set(WORKER_QUEUES.split(",")) == declared
