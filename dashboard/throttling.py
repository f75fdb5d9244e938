"""Per-client limits on submissions (SUBMISSION_RATE_LIMIT) and sign-in attempts (LOGIN_RATE_LIMIT), counted in
the shared Redis cache by django-ratelimit, so every web replica counts together. HAProxy keeps a coarser
per-address limit in front.

Whatever queues work from a web request, a submission, a batch or a retry, single or bulk, counts as a submission
and is refused when the queue has no room for it (Refused, with the status and the text a person reads).
"""

import contextlib
from collections.abc import Iterator
from typing import Protocol

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext, ngettext
from django_ratelimit.core import get_usage
from redis.exceptions import RedisError

from tasks import services
from tasks.models import AuditEntry

QUEUE_FULL_RETRY_SECONDS = 60


class Refused(Exception):
    """The request queued nothing: invalid (422, the form says why), past the client's limit (429) or the
    queue's cap (503)."""

    def __init__(self, message: str, *, status: int, retry_after: int | None = None):
        super().__init__(message)
        self.message, self.status, self.retry_after = message, status, retry_after

    def advise(self, response: HttpResponse) -> HttpResponse:
        """`response`, with when to try again (Retry-After) if the refusal says."""
        if self.retry_after:
            response["Retry-After"] = str(self.retry_after)
        return response


def count_submission(request: HttpRequest) -> None:
    """Counts a submission (or retry) against the client's limit; raises Refused (429) past it."""
    if wait := submission_wait(request):
        raise Refused(too_many_submissions(wait), status=429, retry_after=wait)


@contextlib.contextmanager
def queue_room() -> Iterator[None]:
    """Turns services.QueueFull into Refused (503), saying how much room the queue has."""
    try:
        yield
    except services.QueueFull as full:
        if full.wanted == 1:
            message = gettext("The queue is full: nothing was queued. Try again in a minute.")
        else:
            message = ngettext(
                "The queue has room for %(room)d more computation and this would add %(wanted)d: nothing was queued.",
                "The queue has room for %(room)d more computations and this would add %(wanted)d: nothing was queued.",
                full.room,
            ) % {"room": full.room, "wanted": full.wanted}
        raise Refused(message, status=503, retry_after=QUEUE_FULL_RETRY_SECONDS) from full


class SubmissionForm[T](Protocol):
    def is_valid(self) -> bool: ...

    def add_error(self, field: str | None, error: str) -> None: ...

    def submit(self, owner: AbstractBaseUser | None) -> T: ...


def submission[T](request: HttpRequest, form: SubmissionForm[T], *, owner: AbstractBaseUser | None) -> T:
    """A submission from a web request: counted against the client's limit (429), validated (422), and submitted
    (form.submit, as `owner`'s) if the queue has room (503); raises Refused, which says which, having recorded
    nothing."""
    count_submission(request)
    if not form.is_valid():
        raise Refused("", status=422)
    with queue_room():
        return form.submit(owner)


def act(request: HttpRequest, action: str, *, selection: services.Selection, actor: services.Actor) -> services.Outcome:
    """A cancel or a retry (AuditEntry.Action) from a web request. A retry queues work, so it is counted and capped
    as a submission is (Refused); a cancel is not."""
    if action == AuditEntry.Action.CANCEL:
        return services.cancel(selection=selection, actor=actor)
    count_submission(request)
    with queue_room():
        return services.retry(selection=selection, actor=actor)


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
