"""A counter in the cache that moves on every change to any computation.

A poll compares it with the version its browser last saw (the ETag) and answers 304 without touching the table.
It is a cache: when Redis is unreachable or has lost the key, pages are simply rendered in full.
"""

import logging
import time

from django.core.cache import cache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

VERSION_KEY = "dashboard:computations:version"


def record_change() -> None:
    try:
        cache.incr(VERSION_KEY)
    except ValueError:
        # Missing (evicted or flushed): restart from the clock, never from a number a browser may still hold.
        cache.add(VERSION_KEY, time.time_ns())
    except RedisError:
        logger.warning("Could not record a change in the cache; pages will not answer 304 until it is back")


def current_version() -> int | None:
    try:
        version = cache.get(VERSION_KEY)
        if version is None:
            cache.add(VERSION_KEY, time.time_ns())
            version = cache.get(VERSION_KEY)
    except RedisError:
        return None
    return version
