"""Per-client limits on submissions (SUBMISSION_RATE_LIMIT) and sign-in attempts (LOGIN_RATE_LIMIT), counted in
the shared Redis cache by django-ratelimit, so every web replica counts together. HAProxy keeps a coarser
per-address limit in front."""

from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import ngettext
from django_ratelimit.core import get_usage
from redis.exceptions import RedisError


def submission_wait(request: HttpRequest) -> int:
    """Counts this submission; the seconds the client must wait when it is over the limit, else 0.

    Fails open: with the cache unreachable nobody is limited (HAProxy's limit still holds).
    """
    return _wait(request, "submissions", settings.SUBMISSION_RATE_LIMIT)


def too_many_submissions(wait: int) -> str:
    """What a client over the submission limit reads."""
    message = ngettext(
        "Too many submissions from your address: try again in %(seconds)d second.",
        "Too many submissions from your address: try again in %(seconds)d seconds.",
        wait,
    )
    return message % {"seconds": wait}


def sign_in_wait(request: HttpRequest) -> int:
    """The same for attempts to sign in (LOGIN_RATE_LIMIT per client address): guessing passwords is slow."""
    return _wait(request, "sign-ins", settings.LOGIN_RATE_LIMIT)


def _wait(request: HttpRequest, group: str, rate: str) -> int:
    try:
        usage = get_usage(request, group=group, key="ip", rate=rate, method="POST", increment=True)
    except RedisError:
        return 0
    if usage is None or not usage["should_limit"]:
        return 0
    return max(usage["time_left"], 1)
