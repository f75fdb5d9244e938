"""The use cases: the only ways to create or change a computation.

Views, the admin, the API, the sweep and management commands call these; none of them talks to Celery directly.
Every cancel and retry, of one computation or of thousands, is one call here, recorded in the audit trail.
"""

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, OuterRef
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnreachable

from . import broker, cache_aside, changes, counters, queues, sending
from .models import (
    AuditedComputation,
    AuditEntry,
    Batch,
    Computation,
    ComputationQuerySet,
    InputValue,
    Status,
    WorkflowEdge,
    merged_page,
    search_sources,
)
from .operations import Inputs, Number, Operation, expand_range
from .workflows import settling

QUEUE_CHECK_SECONDS = 1
QUEUE_FULL_KEY = "dashboard:queue-full"
CLIENT_ROOM_KEY, CLIENT_ROOM_MARGIN = "dashboard:client-room", 100
# A bulk action changes at most this many computations at once, in UPDATEs of CHUNK rows each.
BULK_CAP, CHUNK = 10_000, 1_000


class QueueFull(Exception):
    """Queuing `wanted` computations would make more than COMPUTATION_MAX_QUEUED wait (`room` more may), or, when
    `yours`, more than COMPUTATION_MAX_QUEUED_PER_CLIENT of one person's or client address's; nothing was recorded."""

    def __init__(self, *, wanted: int = 1, room: int = 0, yours: bool = False):
        super().__init__(f"{wanted} computations to queue, room for {room}")
        self.wanted, self.room, self.yours = wanted, room, yours


@dataclass(frozen=True)
class Actor:
    """Who acts, for the audit trail: a signed-in user if any, the client's address, through what, and with which
    API token if any."""

    source: str
    address: str | None = None
    user: object | None = None
    token_name: str = ""


@dataclass(frozen=True)
class Selection:
    """Which computations an action is for: these ids, or all that match the list's filters; only those of
    `owner` when given (accounts on, not staff)."""

    ids: Sequence[int] = ()
    filters: Mapping[str, object] | None = None
    search: str = ""  # with filters: what the list's search finds among them
    owner: AbstractBaseUser | None = None
    queue: str | None = None  # instead: every computation whose task goes to this queue (a purge's)

    def queryset(self) -> ComputationQuerySet:
        rows = Computation.objects.visible_to(self.owner)
        if self.queue is not None:
            return rows.filter(queues.rows_of(self.queue))
        if self.filters is None:
            return rows.filter(pk__in=list(self.ids))
        rows = rows.filter(**self.filters)
        if not self.search:
            return rows
        # The newest the search finds, as many as an action takes (and one more, to tell it was capped).
        found = merged_page([source.only("pk") for source in search_sources(rows, self.search)], size=BULK_CAP + 1)
        return rows.filter(pk__in=[row.pk for row in found.rows])

    def describe(self) -> dict:
        if self.queue is not None:
            return {"queue": self.queue}
        if self.filters is None:
            return {"ids": list(self.ids)}
        return {"filter": dict(self.filters)} | ({"search": self.search} if self.search else {})


@dataclass(frozen=True)
class Outcome:
    requested: int  # computations selected that the action could apply to, up to BULK_CAP
    changed: int  # those it did change (others changed state meanwhile)
    capped: bool = False  # more matched than BULK_CAP
    entry: AuditEntry | None = field(default=None, compare=False)


def submit(
    *,
    operation: Operation,
    inputs: Inputs,
    work_seconds: int = 0,
    idempotency_key: uuid.UUID | None = None,
    owner: AbstractBaseUser | None = None,
    address: str | None = None,
    actor: Actor | None = None,
) -> Computation:
    """Records a computation and sends its task once the transaction commits. `inputs` are validated (forms do
    it). A second submission with the same idempotency key returns the first computation instead. `owner`, or
    without one the client `address`, is the client whose own cap it counts against. With an `actor` (the API's),
    the submission is in the audit trail too, in the same transaction."""
    make_room(1, owner, address)
    try:
        with transaction.atomic():
            computation = Computation.objects.create(
                operation=operation.name,
                inputs=operation.serialize_inputs(inputs),
                work_seconds=work_seconds,
                idempotency_key=idempotency_key,
                owner=owner,
                submitted_from=None if owner else address,
                # Sent right after the commit; if that fails, enqueue() clears it for the sweep to see.
                enqueued_at=timezone.now(),
            )
            InputValue.objects.bulk_create(InputValue.of([(computation.pk, computation.inputs)]))
            if actor is not None:
                audit(AuditEntry.Action.SUBMIT, actor, {"ids": [computation.pk]}, ids=[computation.pk], changed=1)
    except IntegrityError:
        # The same form posted again (a double click, a browser's retry): the first row holds the unique key.
        if idempotency_key and (existing := Computation.objects.filter(idempotency_key=idempotency_key).first()):
            return existing
        raise
    transaction.on_commit(lambda: _submitted(operation, computation))
    return computation


def submit_batch(
    *,
    operation: Operation,
    varied: str,
    start: Number,
    stop: Number,
    step: Number,
    fixed: Inputs,
    work_seconds: int = 0,
    idempotency_key: uuid.UUID | None = None,
    owner: AbstractBaseUser | None = None,
    address: str | None = None,
    actor: Actor | None = None,
) -> Batch:
    """Records a batch and a computation for each value of `varied` from start to stop, in one transaction, and
    sends their tasks over one broker connection once it commits: a crash leaves all of it or none, and the sweep
    sends whatever the broker did not take. The values are validated (BatchForm does it). With an `actor`, the
    submission is in the audit trail, as one entry for the batch."""
    if idempotency_key and (existing := Batch.objects.filter(idempotency_key=idempotency_key).first()):
        return existing
    spec = next(spec for spec in operation.inputs if spec.name == varied)
    values = expand_range(spec, start, stop, step)
    make_room(len(values), owner, address)
    now = timezone.now()
    with transaction.atomic():
        batch = Batch.objects.create(
            operation=operation.name,
            varied=varied,
            start=str(start),
            stop=str(stop),
            step=str(step),
            fixed_inputs={each.name: each.serialize(fixed[each.name]) for each in operation.inputs if each != spec},
            work_seconds=work_seconds,
            size=len(values),
            created_at=now,
            idempotency_key=idempotency_key,
            owner=owner,
        )
        members = Computation.objects.bulk_create(_members(batch, operation, values, fixed, address))
        if members[0].pk is None:
            # MySQL's bulk insert returns no ids (MariaDB's does): they are the batch's, ascending as inserted.
            for member, pk in zip(members, batch.computations.order_by("pk").values_list("pk", flat=True), strict=True):
                member.pk = pk
        InputValue.objects.bulk_create(InputValue.of((member.pk, member.inputs) for member in members), batch_size=5000)
        if actor is not None:
            audit(AuditEntry.Action.SUBMIT, actor, {"batch": batch.pk}, requested=len(members), changed=len(members))
        transaction.on_commit(lambda: _batch_submitted(operation, batch))
    return batch


def _members(
    batch: Batch, operation: Operation, values: Sequence[Number], fixed: Inputs, address: str | None
) -> Iterable[Computation]:
    """A computation per value; the first stands for the batch in the main list."""
    for index, value in enumerate(values):
        yield Computation(
            operation=operation.name,
            inputs=operation.serialize_inputs({**fixed, batch.varied: value}),
            work_seconds=batch.work_seconds,
            batch=batch,
            in_main_list=index == 0,
            owner=batch.owner,
            submitted_from=None if batch.owner else address,
            created_at=batch.created_at,
            enqueued_at=batch.created_at,
        )


def _submitted(operation: Operation, computation: Computation) -> None:
    """Once the row is committed: the lists learn of it, the metrics count it, its task is sent."""
    changes.record_change()
    counters.record_submitted(operation.name)
    sending.enqueue(computation)


def _batch_submitted(operation: Operation, batch: Batch) -> None:
    changes.record_change()
    pks = list(batch.computations.order_by("pk").values_list("pk", flat=True))
    counters.record_submitted(operation.name, len(pks))
    sending.dispatch(pks, queue=queues.for_computation(operation.name, batch.work_seconds))


def make_room(wanted: int, owner: AbstractBaseUser | None = None, address: str | None = None) -> None:
    """Raises QueueFull unless `wanted` more computations may be queued, in all and by this client (the person, or
    without one the address). One in all is the common case, answered from a cached flag; more are counted against
    the room left (a bounded count), as are a client's."""
    if wanted == 1:
        if _queue_is_full():
            raise QueueFull
    elif wanted > (room := Computation.objects.queue_room()):
        raise QueueFull(wanted=wanted, room=room)
    theirs = Computation.objects.queued_by(owner, address)
    if theirs is not None:
        _take_client_room(theirs, f"{CLIENT_ROOM_KEY}:{owner.pk if owner else address}", wanted)


def _take_client_room(theirs: ComputationQuerySet, key: str, wanted: int) -> None:
    """Raises QueueFull unless the client may queue `wanted` more. Its room is counted (a bounded count: a
    millisecond at a thousand waiting, on every submission of a busy program) and, while it stays more than
    CLIENT_ROOM_MARGIN from the cap, kept in the cache for a second, less what each submission takes: near the cap it
    is always counted, so the cap holds exactly there."""
    room = cache_aside.read(key)
    if room is None:
        room = theirs.room_below(settings.COMPUTATION_MAX_QUEUED_PER_CLIENT)
    if wanted > room:
        cache_aside.forget(key)
        raise QueueFull(wanted=wanted, room=room, yours=True)
    if room - wanted > CLIENT_ROOM_MARGIN:
        cache_aside.keep(key, room - wanted, QUEUE_CHECK_SECONDS)
    else:
        cache_aside.forget(key)


def _queue_is_full() -> bool:
    """Computation.objects.queue_is_full(), asked of the database at most once a second (the answer is shared
    in the cache): the cap guards against an unbounded backlog, and a second's overshoot does not matter to it."""
    full = cache_aside.read(QUEUE_FULL_KEY)
    if full is None:
        full = Computation.objects.queue_is_full()
        cache_aside.keep(QUEUE_FULL_KEY, full, QUEUE_CHECK_SECONDS)
    return full


def actionable(selection: Selection, action: str) -> ComputationQuerySet:
    """The selected computations the action applies to: in flight for cancel, failed or cancelled for retry,
    queued for a purge."""
    rows = selection.queryset()
    match action:
        case AuditEntry.Action.CANCEL:
            return rows.in_flight()
        case AuditEntry.Action.PURGE:
            return rows.filter(status=Status.QUEUED)
    return rows.retryable()


def cancel(*, selection: Selection, actor: Actor) -> Outcome:
    """Cancels the selected computations that are queued or running (at most BULK_CAP)."""
    return _act(AuditEntry.Action.CANCEL, selection, actor, _cancel_rows)


@dataclass(frozen=True)
class Purged:
    outcome: Outcome  # the computations cancelled
    messages: int | None  # the messages dropped from the broker; None when it could not be reached


def purge(*, queue: str, actor: Actor) -> Purged:
    """Empties a queue: every computation waiting in it ends as cancelled (however many: none stays queued with
    its message gone), in one audit entry, then the queue's messages are dropped. A computation submitted in
    between loses its message but stays queued, so the sweep sends it again."""
    outcome = _act(AuditEntry.Action.PURGE, Selection(queue=queue), actor, _cancel_rows, cap=None)
    try:
        messages = broker.purge(queue)
    except BrokerUnreachable:
        messages = None  # the workers will find their rows cancelled and skip them
    return Purged(outcome, messages)


def _cancel_rows(rows: ComputationQuerySet, now: datetime) -> int:
    changed = rows.cancel(now)
    if changed:
        ended = rows.filter(status=Status.CANCELLED, updated_at=now).order_by().values_list("operation")
        for operation, count in ended.annotate(n=Count("pk")):
            transaction.on_commit(lambda o=operation, c=count: counters.record_finished(o, Status.CANCELLED, c))
    return changed


def retry(*, selection: Selection, actor: Actor) -> Outcome:
    """Queues the selected failed or cancelled computations again (at most BULK_CAP), each sent once the
    transaction commits. Like a submission, it is refused (QueueFull) when the queue has no room for them all."""

    def requeue(rows: ComputationQuerySet, now: datetime) -> int:
        # A workflow's step that takes others' results waits for them again: the settle that follows sends it.
        takes_results = Exists(WorkflowEdge.objects.filter(workflow=OuterRef("workflow_id"), target=OuterRef("step")))
        changed = rows.filter(takes_results).requeue(now, status=Status.WAITING) + rows.exclude(takes_results).requeue(
            now
        )
        if changed:
            requeued = list(rows.filter(updated_at=now, status=Status.QUEUED).values_list("pk", flat=True))
            transaction.on_commit(lambda: sending.dispatch(requeued))
            workflows = set(rows.filter(updated_at=now, workflow__isnull=False).values_list("workflow_id", flat=True))
            if workflows:
                transaction.on_commit(lambda: settling.settle(workflows))
        return changed

    return _act(AuditEntry.Action.RETRY, selection, actor, requeue)


def _act(
    action: str,
    selection: Selection,
    actor: Actor,
    change: Callable[[ComputationQuerySet, datetime], int],
    *,
    cap: int | None = BULK_CAP,
) -> Outcome:
    rows = actionable(selection, action).order_by("-pk").values_list("pk", flat=True)
    ids = list(rows if cap is None else rows[: cap + 1])
    capped = cap is not None and len(ids) > cap
    ids = ids[:cap]
    if action == AuditEntry.Action.RETRY and ids:
        make_room(len(ids))
    now = timezone.now()
    with transaction.atomic():
        # One conditional UPDATE per chunk: a row that changed state meanwhile is left as it is.
        changed = sum(change(Computation.objects.filter(pk__in=chunk), now) for chunk in _chunks(ids))
        entry = audit(action, actor, selection.describe(), ids=ids, changed=changed)
        # The entry shows on the computations' pages, even when the action changed none of them.
        transaction.on_commit(changes.record_change)
    return Outcome(requested=len(ids), changed=changed, capped=capped, entry=entry)


def audit(
    action: str,
    actor: Actor,
    selection: dict,
    *,
    ids: Sequence[int] = (),
    changed: int = 0,
    requested: int | None = None,
) -> AuditEntry:
    """Writes one entry of the audit trail: an action on these computations (`ids`), or on what `selection`
    names (a queue, a worker, a batch of `requested` computations)."""
    # Within a submission's or an action's transaction, no savepoint of its own: it stands or falls with it.
    with transaction.atomic(savepoint=False):
        entry = AuditEntry.objects.create(
            action=action,
            source=actor.source,
            user=actor.user if getattr(actor.user, "is_authenticated", False) else None,
            address=actor.address,
            token_name=actor.token_name,
            selection=selection,
            requested=len(ids) if requested is None else requested,
            changed=changed,
        )
        for chunk in _chunks(ids):
            AuditedComputation.objects.bulk_create(
                [AuditedComputation(entry_id=entry.pk, computation_id=pk) for pk in chunk]
            )
    return entry


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    return (ids[start : start + CHUNK] for start in range(0, len(ids), CHUNK))
