"""Django's Redis cache backend, with one client per connection pool, and a pause after the cache fails to answer.

Django's makes a `redis.Redis` for every call, and each copies redis-py's table of some 170 response callbacks: a
fifth of a millisecond per rendered list, which reads the cache four or five times. A client over a pool is safe to
share between threads, and closing one never closes the pool it was given.

A cache that does not answer costs each connection attempt its whole connect timeout: a host that vanished (a lost
Swarm node) drops the packets rather than refusing them. At four or five reads per page, every page then took
seconds, the replica's threads filled up, its health check timed out, and HAProxy had no replica left (measured on
the Swarm when the node holding the cache lost its power). So after one failed connection, the process does not
try it again for UNREACHABLE_PAUSE_SECONDS: reads miss and writes are dropped at once, as they would be after the
timeout, and pages answer without their cache.
"""

import time

from django.core.cache.backends import redis
from redis.connection import Connection

UNREACHABLE_PAUSE_SECONDS = 5


# Per server (host, port): until when this process leaves it alone (a monotonic time; shared by every thread).
_paused_until: dict[tuple[str, int], float] = {}


class _Connection(Connection):
    def _connect(self):
        server = (self.host, self.port)
        if time.monotonic() < _paused_until.get(server, 0.0):
            raise ConnectionRefusedError("the cache failed to answer a moment ago")
        try:
            return super()._connect()
        except OSError:  # refused, unreachable, or the connect timeout (socket.timeout is an OSError)
            _paused_until[server] = time.monotonic() + UNREACHABLE_PAUSE_SECONDS
            raise


class _Client(redis.RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._pool_options.setdefault("connection_class", _Connection)
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
