"""Per-client limits: the computations a client queues (SUBMISSION_RATE_LIMIT) and its attempts to sign in
(LOGIN_RATE_LIMIT), and what it may keep waiting. HAProxy keeps a coarser per-address limit in front.

Whatever queues work from a web request, on any door (a submission, a batch, a retry single or bulk, a schedule's
"run now"), spends the client's budget by what it queues: a batch of 500 spends 500. The client is the API token
(with a rate of its own), else the signed-in person, else the client address. The counters live in the broker's
Redis, which never evicts, so filling the cache cannot reset them; every web replica counts together. A request
refused for any reason spends nothing but the one attempt of an invalid form.

A refusal is Refused, with the status and the text a person reads; dashboard.web.submitting refuses work on it too,
past the queue's cap or what one client may have waiting.
"""

import contextlib
import re
import time
from collections.abc import Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.translation import ngettext
from redis.exceptions import RedisError

from tasks import redis_clients

RATE = re.compile(r"^(\d+)/(\d*)([smhd])$")
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class Refused(Exception):
    """The request queued nothing: invalid (422, the form says why), past the client's limit or its share of the
    queue (429) or the queue's cap (503)."""

    def __init__(self, message: str, *, status: int, retry_after: int | None = None, kind: str = ""):
        super().__init__(message)
        self.message, self.status, self.retry_after = message, status, retry_after
        self.kind = kind  # "queue-full" for a cap of the queue's, where the status alone does not tell

    def advise(self, response: HttpResponse) -> HttpResponse:
        """`response`, with when to try again (Retry-After) if the refusal says."""
        if self.retry_after:
            response["Retry-After"] = str(self.retry_after)
        return response


def charge(request: HttpRequest, computations: int) -> str:
    """Spends `computations` of the client's SUBMISSION_RATE_LIMIT, or raises Refused (429) when that is more than
    is left, having spent nothing; the counter's key."""
    client, rate = _client(request)
    key, wait = _spend(client, "submissions", rate, computations)
    if wait:
        _give_back(key, computations)
        raise Refused(too_many_submissions(wait), status=429, retry_after=wait)
    return key


@contextlib.contextmanager
def budget(request: HttpRequest, computations: int) -> Iterator[None]:
    """charge() for the block, given back if the block raises: what was refused was not queued."""
    key = charge(request, computations)
    try:
        yield
    except BaseException:
        _give_back(key, computations)
        raise


def too_many_submissions(wait: int) -> str:
    """What a client over the submission limit reads."""
    message = ngettext(
        "Too many submissions from you: try again in %(seconds)d second.",
        "Too many submissions from you: try again in %(seconds)d seconds.",
        wait,
    )
    return message % {"seconds": wait}


def too_many_attempts(wait: int) -> str:
    """What a client over the sign-in limit reads."""
    message = ngettext(
        "Too many attempts to sign in from your address: try again in %(seconds)d second.",
        "Too many attempts to sign in from your address: try again in %(seconds)d seconds.",
        wait,
    )
    return message % {"seconds": wait}


def sign_in_wait(request: HttpRequest) -> int:
    """Counts an attempt to sign in (LOGIN_RATE_LIMIT per client address: guessing passwords is slow), or an API
    token that was refused; the seconds the client must wait when it is over the limit, else 0."""
    return _spend(f"address:{request.META.get('REMOTE_ADDR')}", "sign-ins", settings.LOGIN_RATE_LIMIT, 1)[1]


def _client(request: HttpRequest) -> tuple[str, str]:
    """Whose budget, and its rate: an API token's own (API_TOKEN_RATE_LIMIT: a program is not a person typing),
    else the signed-in person's, else the client address's (SUBMISSION_RATE_LIMIT)."""
    if token := getattr(request, "api_token", None):
        return f"token:{token.pk}", settings.API_TOKEN_RATE_LIMIT
    return person_or_address(request), settings.SUBMISSION_RATE_LIMIT


def person_or_address(request: HttpRequest) -> str:
    """The client as a key: the signed-in person (a token's too), else the client address."""
    if request.user.is_authenticated:
        return f"person:{request.user.pk}"
    return f"address:{request.META.get('REMOTE_ADDR')}"


def _spend(client: str, group: str, rate: str, amount: int) -> tuple[str, int]:
    """Adds `amount` to the client's count in this window of `rate` ("count/period"); the counter's key, and the
    seconds until the window ends when that went past the count, else 0. Fails open: with the broker's Redis
    unreachable nobody is limited (HAProxy's limit still holds)."""
    count, period = parse_rate(rate)
    now = time.time()
    key = f"dashboard:limit:{group}:{client}:{int(now // period)}"
    try:
        durable = redis_clients.durable()
        with durable.pipeline() as pipe:
            used, _ = pipe.incrby(key, amount).expire(key, period + 1).execute()
    except RedisError:
        return key, 0
    return key, 0 if used <= count else max(int(period - now % period), 1)


def _give_back(key: str, amount: int) -> None:
    with contextlib.suppress(RedisError):
        redis_clients.durable().decrby(key, amount)


def parse_rate(rate: str) -> tuple[int, int]:
    """ "30/m" → (30, 60), "1000/10m" → (1000, 600)."""
    match = RATE.match(rate.strip())
    if match is None:
        raise ValueError(f"a rate is count/period, e.g. 30/m or 1000/10m: {rate!r}")
    count, multiple, unit = match.groups()
    return int(count), int(multiple or 1) * SECONDS[unit]
