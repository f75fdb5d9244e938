"""A counter in Redis that moves on every change to any computation.

A poll compares it with the version its browser last saw (the ETag) and answers 304 without touching the table.
It lives in the cache's Redis database, read and written with one command each through a client of its own
(Django's cache API takes two round trips for an increment). It is a cache: when Redis is unreachable or has
lost the key, pages are simply rendered in full.
"""

import logging
import time

from redis.exceptions import RedisError

from .redis_clients import cache as client

logger = logging.getLogger(__name__)

VERSION_KEY = "dashboard:computations:version"


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
