"""The web's one gate for work: whatever queues computations from a request (a submission, a batch, a schedule, a
retry single or bulk, on the page, the admin or the API) passes here. It is counted against the client's limit
(dashboard.web.throttling), submitted if the queue and the client's share of it have room, and refused (Refused,
with the status and the text a person reads) having recorded nothing."""

import contextlib
from collections.abc import Callable, Iterator
from typing import Protocol

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext, ngettext

from dashboard.web.access import owner_of_new
from dashboard.web.throttling import Refused, budget, charge
from tasks import scheduling, services
from tasks.models import AuditEntry, Schedule

QUEUE_FULL_RETRY_SECONDS = 60


def submit[T](
    request: HttpRequest,
    form: "SubmissionForm[T]",
    *,
    accepted: Callable[[T], HttpResponse],
    refused: Callable[[int], HttpResponse],
) -> HttpResponse:
    """Counts, validates and submits a posted form (`submission`). `accepted` answers with what it created;
    `refused` with the form again in the refusal's status, its reason above the fields."""
    try:
        created = submission(request, form, owner=owner_of_new(request))
    except Refused as refusal:
        if refusal.message:
            form.add_error(None, refusal.message)
        return refusal.advise(refused(refusal.status))
    return accepted(created)


@contextlib.contextmanager
def queue_room() -> Iterator[None]:
    """Turns services.QueueFull into Refused: 503 for the queue's cap, 429 for the client's own, saying how much room
    there is."""
    try:
        yield
    except services.QueueFull as full:
        raise _queue_full(full) from full


def _queue_full(full: services.QueueFull) -> Refused:
    if full.yours:
        message = gettext(
            "One person may have %(cap)s computations waiting; yours leave room for %(room)s more: nothing was "
            "queued. Try again once some have run."
        ) % {"cap": settings.COMPUTATION_MAX_QUEUED_PER_CLIENT, "room": full.room}
        return Refused(message, status=429, retry_after=QUEUE_FULL_RETRY_SECONDS, kind="queue-full")
    if full.wanted == 1:
        message = gettext("The queue is full: nothing was queued. Try again in a minute.")
    else:
        message = ngettext(
            "The queue has room for %(room)d more computation and this would add %(wanted)d: nothing was queued.",
            "The queue has room for %(room)d more computations and this would add %(wanted)d: nothing was queued.",
            full.room,
        ) % {"room": full.room, "wanted": full.wanted}
    return Refused(message, status=503, retry_after=QUEUE_FULL_RETRY_SECONDS, kind="queue-full")


class SubmissionForm[T](Protocol):
    def is_valid(self) -> bool: ...

    def add_error(self, field: str | None, error: str) -> None: ...

    @property
    def size(self) -> int:
        """How many computations the valid form queues."""
        ...

    def submit(self, owner: AbstractBaseUser | None, address: str | None) -> T: ...


def submission[T](request: HttpRequest, form: SubmissionForm[T], *, owner: AbstractBaseUser | None) -> T:
    """A submission from a web request: validated (422, which spends one of the client's budget, as an attempt),
    counted by what it queues against the client's limit (429), and submitted (form.submit, as `owner`'s) if the
    queue and the client's share of it have room (503, 429); raises Refused, which says which, having recorded
    nothing."""
    if not form.is_valid():
        charge(request, 1)  # an attempt: a flood of invalid posts is limited too
        raise Refused("", status=422)
    with budget(request, form.size), queue_room():
        return form.submit(owner, request.META.get("REMOTE_ADDR"))


def act(request: HttpRequest, action: str, *, selection: services.Selection, actor: services.Actor) -> services.Outcome:
    """A cancel or a retry (AuditEntry.Action) from a web request. A retry queues work, so it spends the client's
    budget by the computations it would queue again, and is capped as a submission is (Refused); a cancel is
    not."""
    if action == AuditEntry.Action.CANCEL:
        return services.cancel(selection=selection, actor=actor)
    again = services.actionable(selection, action).order_by()[: services.BULK_CAP].count()
    with budget(request, max(again, 1)), queue_room():
        return services.retry(selection=selection, actor=actor)


def on_schedule(request: HttpRequest, schedule: Schedule, action: str, actor: services.Actor) -> object:
    """One of scheduling.ACTIONS, from any door. "Run now" queues a computation: it spends the client's submission
    budget (Refused past it)."""
    if action != "run":
        return scheduling.ACTIONS[action](schedule, actor)
    with budget(request, 1):
        return scheduling.ACTIONS[action](schedule, actor)
