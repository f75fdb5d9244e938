"""Django's Redis cache backend, with one client per connection pool.

Django's makes a `redis.Redis` for every call, and each copies redis-py's table of some 170 response callbacks: a
fifth of a millisecond per rendered list, which reads the cache four or five times. A client over a pool is safe to
share between threads, and closing one never closes the pool it was given.
"""

from django.core.cache.backends import redis


class _Client(redis.RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        if (client := self._clients.get(id(pool))) is None:
            client = self._clients.setdefault(id(pool), self._client(connection_pool=pool))
        return client


class RedisCache(redis.RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _Client
