"""Values worked out once and shared by every process through the cache (Django's, a Redis that may evict or be
away). The cache is optional: unreachable or emptied, each process works the value out itself, as if alone.

`shared` keeps a value fresh for a time: when it is due, the one process that takes its refresh lock works it out
again while the others keep serving the last one, so a costly read (counting a million rows, the Activity figures)
never runs in every process at once."""

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from redis.exceptions import RedisError


@dataclass(frozen=True)
class Made[T]:
    value: T
    at: float  # time.time() when it was worked out


def read(key: str) -> Any | None:
    """The cached value, or None when there is none or the cache cannot be reached."""
    try:
        return cache.get(key)
    except RedisError:
        return None


def keep(key: str, value: object, seconds: float) -> None:
    """Caches `value` for `seconds`, unless the cache cannot be reached."""
    with contextlib.suppress(RedisError):
        cache.set(key, value, timeout=seconds)


def forget(key: str) -> None:
    """Drops the cached value, unless the cache cannot be reached."""
    with contextlib.suppress(RedisError):
        cache.delete(key)


def shared[T](
    key: str,
    make: Callable[[], T],
    *,
    fresh_for: float,
    kept_for: float,
    stale: Callable[[Made[T]], bool] | None = None,
) -> Made[T]:
    """`make()`'s value as the cache holds it while it is younger than `fresh_for` seconds (or `stale` says it is
    out of date); older, worked out again by the process that takes the refresh, and kept `kept_for` seconds."""
    made = read(key)
    due = made is None or (stale is not None and stale(made))
    if due or (time.time() - made.at > fresh_for and _refresh_is_ours(key, fresh_for)):
        made = Made(make(), time.time())
        keep(key, made, kept_for)
    return made


def _refresh_is_ours(key: str, seconds: float) -> bool:
    try:
        return cache.add(f"{key}:refreshing", 1, timeout=seconds)
    except RedisError:
        return True
