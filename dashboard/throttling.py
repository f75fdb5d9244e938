"""The per-client submission limit (SUBMISSION_RATE_LIMIT), counted in the shared Redis cache by
django-ratelimit, so every web replica counts together. HAProxy keeps a coarser per-address limit in front."""

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import get_usage
from redis.exceptions import RedisError


def submission_wait(request: HttpRequest) -> int:
    """Counts this submission; the seconds the client must wait when it is over the limit, else 0.

    Fails open: with the cache unreachable nobody is limited (HAProxy's limit still holds).
    """
    try:
        usage = get_usage(
            request, group="submissions", key="ip", rate=settings.SUBMISSION_RATE_LIMIT, method="POST", increment=True
        )
    except RedisError:
        return 0
    if usage is None or not usage["should_limit"]:
        return 0
    return max(usage["time_left"], 1)
