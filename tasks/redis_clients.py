"""Clients of the two Redis servers the dashboard keeps records in, apart from the broker's queues.

- The cache (CACHE_URL): disposable, bounded in memory, evicts the least recently used keys. Rendered partials, the
  change counter, figures that are worked out again when lost.
- The broker's server (REDIS_URL), which never evicts: small records, bounded in number, that must not vanish when
  the cache fills: the metrics' counters, the sweep's lock and the time of its last run.
"""

import threading

import redis
from django.conf import settings

_clients: dict[str, redis.Redis] = {}
_making = threading.Lock()


def cache() -> redis.Redis:
    return _client(settings.CACHE_URL)


def durable() -> redis.Redis:
    return _client(settings.REDIS_URL)


def _client(url: str) -> redis.Redis:
    """One client per server and process, made once: of two made at once by two threads, the one not kept would
    close its connections when collected, under the feet of the thread still using it (seen as "Bad file
    descriptor" in uWSGI's threads). Its pool notices a fork and reconnects, so uWSGI's workers may inherit it."""
    if (client := _clients.get(url)) is None:
        with _making:
            if (client := _clients.get(url)) is None:
                client = _clients[url] = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    return client
