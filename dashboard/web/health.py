"""Readiness: can this process reach what it needs to do its work?"""

import time

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection
from redis.exceptions import RedisError

TIMEOUT_SECONDS = 1
# Pages ask on every render whether the broker answers; the answer is kept this long in the process.
BROKER_STATE_SECONDS = 2
_broker_state: tuple[float, bool] = (0.0, True)


def check_dependencies() -> dict[str, str]:
    """{"database" | "broker" | "cache": "ok" or the reason it is not}."""
    return {"database": _database(), "broker": _broker(), "cache": _cache()}


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as error:
        return f"unreachable: {error}"
    return "ok"


def _broker() -> str:
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=TIMEOUT_SECONDS, socket_timeout=TIMEOUT_SECONDS
    )
    try:
        client.ping()
    except RedisError as error:
        return f"unreachable: {error}"
    finally:
        client.close()
    return "ok"


def _cache() -> str:
    try:
        cache.get("dashboard:health")
    except RedisError as error:
        return f"unreachable: {error}"
    return "ok"


def broker_reachable() -> bool:
    """Whether the broker answered a ping within the last few seconds (for the dashboard's banner)."""
    global _broker_state
    checked_at, reachable = _broker_state
    if time.monotonic() - checked_at > BROKER_STATE_SECONDS:
        reachable = _broker() == "ok"
        _broker_state = (time.monotonic(), reachable)
    return reachable
