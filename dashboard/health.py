"""Readiness: can this process reach what it needs to do its work?"""

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection
from redis.exceptions import RedisError

TIMEOUT_SECONDS = 1


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
