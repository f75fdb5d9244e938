"""A counter in Redis that moves on every change to any computation.

A poll compares it with the version its browser last saw (the ETag) and answers 304 without touching the table.
It lives in the cache's Redis database, read and written with one command each through a client of its own
(Django's cache API takes two round trips for an increment). It is a cache: when Redis is unreachable or has
lost the key, pages are simply rendered in full.
"""

import functools
import logging
import time

import redis
from django.conf import settings
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

VERSION_KEY = "dashboard:computations:version"


@functools.cache
def client() -> redis.Redis:
    """The Redis client of the cache's database, shared by the change counter and tasks.metrics."""
    # The pool notices a fork and reconnects, so a client made before uWSGI forks its workers is safe.
    return redis.Redis.from_url(settings.CACHE_URL, socket_connect_timeout=1, socket_timeout=1)


def record_change() -> None:
    try:
        if client().incr(VERSION_KEY) == 1:
            # The key was missing (evicted, flushed): restart from the clock, never from a number a browser may
            # still hold in an ETag.
            client().set(VERSION_KEY, time.time_ns())
    except RedisError:
        logger.warning("Could not record a change in the cache; pages will not answer 304 until it is back")


def current_version() -> int | None:
    try:
        version = client().get(VERSION_KEY)
        if version is None:
            client().set(VERSION_KEY, time.time_ns(), nx=True)
            version = client().get(VERSION_KEY)
    except RedisError:
        return None
    return int(version)
