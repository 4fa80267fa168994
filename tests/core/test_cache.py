"""The Redis cache backend reuses one client per pool and behaves as Django's."""

import pytest
from django.conf import settings
from django.core.cache import cache

pytestmark = pytest.mark.skipif(
    not settings.CACHES["default"]["BACKEND"].endswith("core.cache.RedisCache"),
    reason="CACHE_URL is not Redis in this run (CI's PostgreSQL + Redis run covers it)",
)


def test_redis_cache_reuses_its_client_and_keeps_django_semantics():
    cache.set("outlet-test:a", {"x": 1}, 30)
    first = cache._cache.get_client()

    assert cache.get("outlet-test:a") == {"x": 1}
    assert cache.add("outlet-test:a", "other", 30) is False
    cache.set("outlet-test:n", 1, 30)
    assert cache.incr("outlet-test:n") == 2
    assert cache.get_many(["outlet-test:a", "outlet-test:missing"]) == {"outlet-test:a": {"x": 1}}
    assert cache._cache.get_client() is first
    cache.delete_many(["outlet-test:a", "outlet-test:n"])
    assert cache.get("outlet-test:a") is None


def test_set_many_and_publish_stores_then_announces_in_order():
    subscription = cache.subscribe("outlet-test:channel")
    try:
        assert subscription.get_message(timeout=2)["type"] == "subscribe"

        cache.set_many_and_publish(
            {"outlet-test:v": "one"}, channel="outlet-test:channel", message="one", timeout=30
        )
        cache.set_many_and_publish(
            {"outlet-test:v": "two"}, channel="outlet-test:channel", message="two", timeout=30
        )

        received = [subscription.get_message(timeout=2)["data"] for _ in range(2)]
        assert received == [b"one", b"two"]
        assert cache.get("outlet-test:v") == "two"
        client = cache._cache.get_client(write=True)
        assert 0 < client.ttl(cache.make_key("outlet-test:v")) <= 30
    finally:
        subscription.close()
        cache.delete("outlet-test:v")
