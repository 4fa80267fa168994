from collections.abc import Iterator

import pytest

from tests.factories import NewsletterFactory


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    """Run queued tasks in-process (after commit, as in production), mail to the outbox."""
    from outlet.celery import app

    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = False


@pytest.fixture
def daily(db):
    return NewsletterFactory(name="The Daily Briefing", slug="daily", position=1)


@pytest.fixture
def weekly(db):
    return NewsletterFactory(name="The Weekly Analysis", slug="weekly", position=2)


@pytest.fixture(autouse=True)
def _forget_tracked_links() -> Iterator[None]:
    """Each test's database reuses ids that the process may have remembered links under."""
    from outlet.newsletters.measuring import answers

    answers.forget_links()
    yield
    answers.forget_links()


@pytest.fixture(autouse=True)
def _forget_claim_frontiers() -> Iterator[None]:
    """Each test's database reuses issue ids (SQLite) that claims may have remembered."""
    from outlet.newsletters.sending import claims

    claims._claimed_up_to.clear()
    yield
    claims._claimed_up_to.clear()


@pytest.fixture(autouse=True)
def _issue_figures_at_each_flush(settings):
    """Tests read an issue's figures right after a flush: no refresh throttle (its own
    test turns it on)."""
    settings.NEWSLETTER_STATS_REFRESH_SECONDS = 0


#: The cache key prefix under which `redis_buffer` keeps the tracking buffer.
BUFFER_PREFIX = "measuring-test"


@pytest.fixture
def redis_buffer(settings):
    """The production buffer: clicks and opens wait in Redis (db 5) until a flush writes
    them. Skips when Redis is not running."""
    import redis

    client = redis.Redis.from_url("redis://127.0.0.1:6379/5")
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("Redis is not running")
    settings.CACHES = {
        "default": {
            "BACKEND": "outlet.core.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/5",
            "KEY_PREFIX": BUFFER_PREFIX,
        }
    }
    yield client
    for key in client.scan_iter(f"{BUFFER_PREFIX}:*"):
        client.delete(key)
