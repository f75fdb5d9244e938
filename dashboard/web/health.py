"""Liveness and readiness, for HAProxy, Docker and Prometheus: is this process up, and can it reach what it needs to
do its work?"""

import os
import time

import redis
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_safe
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


@login_not_required
@require_safe
def healthz(request: HttpRequest) -> HttpResponse:
    """The process is up; touches nothing else, so a database outage does not take every replica out. 503 while
    the replica drains before it stops (compose/start/web), so HAProxy sends it nothing new."""
    if settings.WEB_DRAIN_FILE and os.path.exists(settings.WEB_DRAIN_FILE):
        return HttpResponse("draining\n", content_type="text/plain", status=503)
    return HttpResponse("ok\n", content_type="text/plain")


@login_not_required
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    """The database, the broker and the cache answer; 503 naming what does not."""
    report = check_dependencies()
    ready = all(state == "ok" for state in report.values())
    return JsonResponse(report, status=200 if ready else 503)
