"""Constant queries, cached pages that never go stale, conditional GET."""

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from outlet.articles.models import Article
from outlet.articles.services import article_save
from tests.factories import AppealFactory, ArticleFactory, AuthorFactory, SectionFactory, TagFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_page_cache(settings):
    settings.CACHE_MIDDLEWARE_SECONDS = 0


def article_with(n: int, section) -> Article:
    tags = TagFactory.create_batch(n)
    article = ArticleFactory(section=section, authors=AuthorFactory.create_batch(n))
    article.tags.set(tags)
    for _ in range(n):
        related = ArticleFactory(section=section, authors=AuthorFactory.create_batch(2))
        related.tags.set(tags)
    return article


def count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_article_page_queries_do_not_grow_with_authors_tags_and_related(client, no_page_cache):
    AppealFactory(is_default=True)
    small = article_with(1, SectionFactory(slug="small"))
    large = article_with(10, SectionFactory(slug="large"))
    client.get("/")  # warm the navigation cache

    assert count_queries(client, small.get_absolute_url()) == count_queries(
        client, large.get_absolute_url()
    )


def test_home_page_queries_do_not_grow_with_articles(client, no_page_cache):
    ArticleFactory.create_batch(2)
    client.get("/")  # warm the navigation cache
    few = count_queries(client, "/")
    ArticleFactory.create_batch(12, authors=AuthorFactory.create_batch(3))

    assert count_queries(client, "/") == few


def test_cached_article_page_needs_no_queries(client):
    article = ArticleFactory()
    client.get(article.get_absolute_url())

    assert count_queries(client, article.get_absolute_url()) <= 1


def test_after_an_editor_saves_readers_see_the_new_text(
    client, editor, django_capture_on_commit_callbacks
):
    article = ArticleFactory(body="<p>The first text.</p>")
    assert "The first text." in client.get(article.get_absolute_url()).content.decode()

    article.body = "<p>The corrected text.</p>"
    with django_capture_on_commit_callbacks(execute=True):
        article_save(article=article, user=editor)

    text = client.get(article.get_absolute_url()).content.decode()
    assert "The corrected text." in text and "The first text." not in text


def test_after_an_editor_saves_in_the_admin_readers_see_the_new_headline(
    client, editor, django_capture_on_commit_callbacks
):
    article = ArticleFactory(headline="Old headline", status="published")
    reader = client.__class__()
    assert "Old headline" in reader.get(article.get_absolute_url()).content.decode()

    client.force_login(editor)
    byline = article.bylines.get()
    from tests.articles.test_admin_workflow import form_data

    data = form_data(
        section=article.section,
        existing_bylines=[byline],
        headline="New headline",
        slug=article.slug,
        status="published",
        publish_at_0=timezone.localtime(article.publish_at).strftime("%Y-%m-%d"),
        publish_at_1=timezone.localtime(article.publish_at).strftime("%H:%M:%S"),
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/admin/articles/article/{article.pk}/change/", data)
    assert response.status_code == 302

    assert "New headline" in reader.get(article.get_absolute_url()).content.decode()
    assert "New headline" in reader.get("/").content.decode()


def test_author_section_and_appeal_changes_reach_cached_pages(
    client, editor, django_capture_on_commit_callbacks
):
    author = AuthorFactory(name="Old Name")
    appeal = AppealFactory(heading="Old appeal")
    article = ArticleFactory(authors=[author], appeal=appeal)
    client.get(article.get_absolute_url())
    admin = client.__class__()
    admin.force_login(editor)

    with django_capture_on_commit_callbacks(execute=True):
        admin.post(
            f"/admin/articles/author/{author.pk}/change/",
            {"name": "New Name", "slug": author.slug, "bio": "", "links": "", "user": ""},
        )
    with django_capture_on_commit_callbacks(execute=True):
        admin.post(
            f"/admin/articles/appeal/{appeal.pk}/change/",
            {"name": appeal.name, "heading": "New appeal", "text": "Give.", "button_label": "Give"},
        )

    text = client.get(article.get_absolute_url()).content.decode()
    assert "New Name" in text and "Old Name" not in text
    assert "New appeal" in text


def test_scheduled_article_appears_on_cached_pages_at_its_time(client):
    ArticleFactory(headline="Already out")
    scheduled = ArticleFactory(
        headline="Coming soon", status="scheduled", publish_at=timezone.now() + timedelta(hours=1)
    )
    assert "Coming soon" not in client.get("/").content.decode()  # now cached

    # The clock reaches the publish time: no save, no task.
    Article.objects.filter(pk=scheduled.pk).update(publish_at=timezone.now() - timedelta(seconds=1))
    from django.core.cache import cache

    from outlet.articles.caching import NEXT_PUBLISH_KEY

    cache.set(NEXT_PUBLISH_KEY, (timezone.now() - timedelta(seconds=1)).timestamp(), None)

    assert "Coming soon" in client.get("/").content.decode()


def test_the_cache_remembers_when_the_next_scheduled_article_is_due(client):
    from django.core.cache import cache

    from outlet.articles.caching import NEXT_PUBLISH_KEY, content_version_bump

    due = timezone.now() + timedelta(minutes=10)
    ArticleFactory(status="scheduled", publish_at=due)
    content_version_bump()

    assert cache.get(NEXT_PUBLISH_KEY) == pytest.approx(due.timestamp())


def test_conditional_get_answers_304_when_nothing_changed(
    client, editor, django_capture_on_commit_callbacks
):
    article = ArticleFactory()
    first = client.get(article.get_absolute_url())
    etag = first["ETag"]

    again = client.get(article.get_absolute_url(), headers={"if-none-match": etag})
    assert again.status_code == 304
    assert again.content == b""

    article.dek = "A new dek"
    with django_capture_on_commit_callbacks(execute=True):
        article_save(article=article, user=editor)
    changed = client.get(article.get_absolute_url(), headers={"if-none-match": etag})
    assert changed.status_code == 200
    assert changed["ETag"] != etag


def test_signed_in_staff_always_get_a_fresh_page(client, editor):
    article = ArticleFactory(headline="Fresh for staff")
    client.force_login(editor)
    client.get(article.get_absolute_url())
    Article.objects.filter(pk=article.pk).update(headline="Changed behind the cache")

    assert "Changed behind the cache" in client.get(article.get_absolute_url()).content.decode()


def test_cached_page_is_the_same_bytes_for_every_reader_and_sets_no_cookie():
    from django.core.cache import cache
    from django.test import Client

    from tests.factories import NewsletterFactory

    NewsletterFactory()  # the sign-up box puts a form on the page
    article = ArticleFactory()
    first, second = Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)
    rendered = first.get(article.get_absolute_url())
    cache.clear()  # a second render, not the first one's stored copy
    cached = second.get(article.get_absolute_url())

    assert rendered.content == cached.content
    assert b"csrfmiddlewaretoken" not in cached.content and b"nonce" not in cached.content
    assert not rendered.cookies and not cached.cookies
    assert "nonce" not in cached["Content-Security-Policy"]
    assert "Cookie" not in cached.get("Vary", "")


def test_reader_signs_up_from_a_cached_page_with_a_token_fetched_on_use(
    django_capture_on_commit_callbacks,
):
    from django.test import Client

    from outlet.newsletters.models import Subscriber
    from tests.factories import NewsletterFactory

    newsletter = NewsletterFactory()
    article = ArticleFactory()
    Client().get(article.get_absolute_url())  # stored
    reader = Client(enforce_csrf_checks=True)
    assert reader.get(article.get_absolute_url()).has_header("ETag")

    token = reader.get("/csrf/")
    assert "no-store" in token["Cache-Control"] and "private" in token["Cache-Control"]
    with django_capture_on_commit_callbacks(execute=False):
        response = reader.post(
            "/newsletter/",
            {"email": "new@example.com", "newsletters": [newsletter.pk],
             "csrfmiddlewaretoken": token.json()["token"]},
            headers={"origin": "http://testserver"},
        )  # fmt: skip

    assert response.status_code == 302
    assert Subscriber.objects.filter(email="new@example.com").exists()


def test_sign_up_without_a_token_changes_nothing_and_offers_the_form_again():
    from django.test import Client

    from outlet.newsletters.models import Subscriber
    from tests.factories import NewsletterFactory

    newsletter = NewsletterFactory()
    reader = Client(enforce_csrf_checks=True)

    response = reader.post(
        "/newsletter/", {"email": "forged@example.com", "newsletters": [newsletter.pk]}
    )

    assert response.status_code == 403
    assert not Subscriber.objects.filter(email="forged@example.com").exists()
    text = response.content.decode()
    assert 'value="forged@example.com"' in text and "csrfmiddlewaretoken" in text
    assert reader.get("/donate/").status_code == 200  # other refusals stay Django's own
    assert b"CSRF" in reader.post("/newsletter/link/", {"email": "x@example.com"}).content


def test_cross_site_sign_up_is_refused_even_with_a_token():
    from django.test import Client

    from outlet.newsletters.models import Subscriber
    from tests.factories import NewsletterFactory

    newsletter = NewsletterFactory()
    reader = Client(enforce_csrf_checks=True)
    token = reader.get("/csrf/").json()["token"]

    response = reader.post(
        "/newsletter/",
        {"email": "x@example.com", "newsletters": [newsletter.pk], "csrfmiddlewaretoken": token},
        headers={"origin": "https://evil.example"},
    )

    assert response.status_code == 403
    assert not Subscriber.objects.exists()
    assert "csrfmiddlewaretoken" not in response.content.decode()  # Django's page, no form


def test_a_cross_site_post_without_a_token_gets_no_form_back():
    from django.test import Client

    from tests.factories import NewsletterFactory

    newsletter = NewsletterFactory()

    response = Client(enforce_csrf_checks=True).post(
        "/newsletter/",
        {"email": "x@example.com", "newsletters": [newsletter.pk]},
        headers={"sec-fetch-site": "cross-site"},
    )

    assert response.status_code == 403
    assert "x@example.com" not in response.content.decode()


def test_cached_page_headers_are_the_full_set(client):
    article = ArticleFactory()
    fresh = client.get(article.get_absolute_url())
    cached = client.get(article.get_absolute_url())

    assert cached["ETag"] == fresh["ETag"]  # the second one did come from the cache
    for header in ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy"):
        assert cached[header].split("nonce-")[0] == fresh[header].split("nonce-")[0]
    assert "\x00" not in cached["Content-Security-Policy"]


def test_cached_pages_still_refuse_unknown_hosts(client):
    article = ArticleFactory()
    client.get(article.get_absolute_url())

    assert (
        client.get(article.get_absolute_url(), headers={"host": "evil.example"}).status_code == 400
    )


def test_only_public_pages_are_cached(client):
    article = ArticleFactory()

    assert client.get(article.get_absolute_url()).has_header("ETag")
    assert not client.get("/robots.txt").has_header("ETag")
    assert not client.get("/robots.txt").has_header("ETag")


class _Django:
    """Stands in for Django behind the WSGI cache, recording what reached it."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, environ, start_response):
        self.calls += 1
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"from django"]


def _wsgi_get(app, path: str, **environ_extra):
    from django.test import RequestFactory

    environ = {**RequestFactory().get(path).environ, **environ_extra}
    status_headers: list = []
    body = b"".join(app(environ, lambda status, headers: status_headers.extend([status, headers])))
    return status_headers[0], dict(status_headers[1]), body


def test_wsgi_layer_answers_stored_pages_without_django(client):
    from outlet.articles.caching import PageCacheWSGI
    from tests.factories import NewsletterFactory

    NewsletterFactory()  # the sign-up box puts a form on the page
    article = ArticleFactory(headline="Served before Django")
    stored = client.get(article.get_absolute_url())  # stored by the middleware
    django = _Django()
    app = PageCacheWSGI(django)

    status, headers, body = _wsgi_get(app, article.get_absolute_url())

    assert status == "200 OK" and django.calls == 0
    assert body == stored.content and "Set-Cookie" not in headers
    assert headers["Content-Security-Policy"] == stored["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert int(headers["Content-Length"]) == len(body)


def test_wsgi_layer_leaves_everything_unusual_to_django(client, settings):
    from outlet.articles.caching import PageCacheWSGI

    article = ArticleFactory()
    client.get(article.get_absolute_url())
    django = _Django()
    app = PageCacheWSGI(django)
    url = article.get_absolute_url()

    _wsgi_get(app, "/not-cached-yet/")
    _wsgi_get(app, url, HTTP_COOKIE=f"{settings.SESSION_COOKIE_NAME}=abc")
    _wsgi_get(app, url, HTTP_HOST="evil.example")
    _wsgi_get(app, url, REQUEST_METHOD="POST")

    assert django.calls == 4
    _wsgi_get(app, url)  # the same page, asked for plainly, is served without Django
    assert django.calls == 4


def test_wsgi_layer_checks_the_host_django_would_check(client, settings):
    from outlet.articles.caching import PageCacheWSGI

    article = ArticleFactory()
    client.get(article.get_absolute_url())
    django = _Django()
    app = PageCacheWSGI(django)
    settings.USE_X_FORWARDED_HOST = True  # behind the production proxy

    _wsgi_get(app, article.get_absolute_url(), HTTP_X_FORWARDED_HOST="evil.example")
    assert django.calls == 1  # Django refuses that host; the cache must not answer for it
    status, _headers, _body = _wsgi_get(
        app,
        article.get_absolute_url(),
        HTTP_HOST="internal:8000",
        HTTP_X_FORWARDED_HOST="testserver",
    )
    assert status == "200 OK" and django.calls == 1


def test_wsgi_layer_revalidates_with_etag_and_sees_new_versions(
    client, editor, django_capture_on_commit_callbacks
):
    from outlet.articles.caching import PageCacheWSGI

    article = ArticleFactory(body="<p>Before.</p>")
    etag = client.get(article.get_absolute_url())["ETag"]
    django = _Django()
    app = PageCacheWSGI(django)

    status, _headers, body = _wsgi_get(app, article.get_absolute_url(), HTTP_IF_NONE_MATCH=etag)
    assert status == "304 Not Modified" and body == b""

    article.body = "<p>After.</p>"
    with django_capture_on_commit_callbacks(execute=True):
        article_save(article=article, user=editor)
    _wsgi_get(app, article.get_absolute_url())
    assert django.calls == 1  # the stored page belongs to an old version


def test_no_page_cache_when_the_cache_is_private_to_each_process(client, settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.DEBUG = False
    article = ArticleFactory()
    client.get(article.get_absolute_url())

    assert not client.get(article.get_absolute_url()).has_header("ETag")


redis_only = pytest.mark.skipif(
    not django_settings.CACHES["default"]["BACKEND"].endswith("core.cache.RedisCache"),
    reason="CACHE_URL is not Redis in this run (CI's PostgreSQL + Redis run covers it)",
)


@redis_only
def test_wsgi_layer_hears_of_a_save_from_another_process(client):
    from outlet.articles.caching import PageCacheWSGI, content_version_bump

    article = ArticleFactory()
    client.get(article.get_absolute_url())
    django = _Django()
    app = PageCacheWSGI(django)
    _wsgi_get(app, article.get_absolute_url())
    _wsgi_get(app, article.get_absolute_url())
    assert django.calls == 0  # the page is in memory, the version is followed

    content_version_bump()  # as a save in another process or on another machine does
    _wsgi_get(app, article.get_absolute_url())

    assert django.calls == 1


@redis_only
def test_wsgi_layer_never_trusts_a_subscription_that_broke(client):
    from django.core.cache import cache

    from outlet.articles.caching import PageCacheWSGI, content_version_bump

    article = ArticleFactory()
    client.get(article.get_absolute_url())
    django = _Django()
    app = PageCacheWSGI(django)
    _wsgi_get(app, article.get_absolute_url())
    assert django.calls == 0

    # The subscription's connection is cut, and a save announces its version while
    # nobody is listening: the announcement is lost for this process.
    redis = cache._cache.get_client(write=True)
    local = "{}:{}".format(*app.watcher._pubsub.connection._sock.getsockname()[:2])
    redis.client_kill(local)
    content_version_bump()
    _wsgi_get(app, article.get_absolute_url())

    assert django.calls == 1  # the stored page belongs to the old version
    client.get(article.get_absolute_url())  # Django stores it again under the new one
    _wsgi_get(app, article.get_absolute_url())
    _wsgi_get(app, article.get_absolute_url())
    assert django.calls == 1  # and the resubscribed watcher serves it from memory


@pytest.mark.parametrize(
    "headers, data",
    [
        ({"sec-fetch-site": "same-site"}, {}),  # a sibling subdomain's page
        ({}, {"csrfmiddlewaretoken": "x" * 64}),  # a token, but a wrong one
    ],
    ids=["same-site", "bad-token"],
)
def test_only_a_same_origin_post_missing_its_token_gets_the_form_back(headers, data):
    from django.test import Client

    from tests.factories import NewsletterFactory

    newsletter = NewsletterFactory()
    reader = Client(enforce_csrf_checks=True)
    reader.get("/csrf/")  # the CSRF cookie is set

    response = reader.post(
        "/newsletter/",
        {"email": "x@example.com", "newsletters": [newsletter.pk], **data},
        headers=headers,
    )

    assert response.status_code == 403
    assert "x@example.com" not in response.content.decode()


def test_a_same_origin_post_without_a_token_gets_the_form_back():
    from django.conf import settings
    from django.test import Client

    from tests.factories import NewsletterFactory

    newsletter = NewsletterFactory()

    response = Client(enforce_csrf_checks=True).post(
        "/newsletter/",
        {"email": "x@example.com", "newsletters": [newsletter.pk]},
        headers={"sec-fetch-site": "same-origin", "origin": settings.SITE_URL},
    )

    assert response.status_code == 403
    assert "x@example.com" in response.content.decode()
