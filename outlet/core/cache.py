"""Django's Redis cache, keeping one redis-py client per connection pool.

Django's backend builds a new `redis.Redis` for every cache call; building one
costs about half a millisecond (it fills its response-callback tables), which is
more than the round trip itself and most of a cached page's time. A client over
a pool is safe to share between threads, so one per pool is kept.

It also carries Redis's publish/subscribe, so that a process can keep a value
it reads on every request (the content version of the page cache) in memory and
still learn of each change the moment it is made: `set_many_and_publish` writes
the keys and announces them in one transaction, `subscribe` listens.
"""

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


class ReusedClientRedisCacheClient(RedisCacheClient):
    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)  # type: ignore[attr-defined]
        clients = self.__dict__.setdefault("_clients_by_pool", {})
        client = clients.get(id(pool))
        if client is None:
            client = clients[id(pool)] = self._client(connection_pool=pool)  # type: ignore[attr-defined]
        return client

    def set_many_and_publish(self, data, timeout, channel: str, message: str) -> None:
        """MSET (with expiry) and PUBLISH in one MULTI/EXEC transaction.

        Subscribers receive messages in the order the writes were made, so the
        last message a subscriber has read always names what the keys hold.
        """
        client = self.get_client(None, write=True)
        pipeline = client.pipeline(transaction=True)
        pipeline.mset({k: self._serializer.dumps(v) for k, v in data.items()})  # type: ignore[attr-defined]
        if timeout is not None:
            for key in data:
                pipeline.expire(key, timeout)
        pipeline.publish(channel, message)
        pipeline.execute()

    def subscribe(self, channel: str):
        """A redis-py PubSub on its own connection, subscribed to `channel`."""
        pubsub = self.get_client(None, write=True).pubsub()
        pubsub.subscribe(channel)
        return pubsub


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = ReusedClientRedisCacheClient

    def set_many_and_publish(
        self, data: dict, *, channel: str, message: str, timeout=DEFAULT_TIMEOUT
    ) -> None:
        """`set_many(data)`, then `message` on `channel`, atomically (see the client)."""
        keys = {self.make_and_validate_key(key): value for key, value in data.items()}
        self._cache.set_many_and_publish(  # type: ignore[attr-defined]
            keys, self.get_backend_timeout(timeout), self.make_key(channel), message
        )

    def subscribe(self, channel: str):
        """Subscribe to a channel named like a key (with this cache's prefix and version)."""
        return self._cache.subscribe(self.make_key(channel))  # type: ignore[attr-defined]
