"""Moving a workflow on from its rows: what its steps' statuses imply, made true, by anyone, any number of times.

`settle` reads a workflow's steps and edges (at most 100 of each) and:
- ends as not run every waiting step that depends, directly or not, on a failed or cancelled one;
- puts back to waiting every step not run that no longer does (its failed ancestors were retried);
- queues every waiting step whose predecessors all succeeded, its inputs filled with their results, or fails it when
  a result is outside what its input takes;
- marks the workflow ended once no step is in flight.
Each change is one conditional UPDATE from the status it read, so two settles at once (two workers ending a diamond's
two middle steps in the same instant, a duplicate delivery, the sweep) change each step once and send it once.

It runs once a step's end has committed (computations_ended, connected in tasks/apps.py), after a retry, and from the
sweep for workflows where nothing moves: the end of the last predecessor is seen by the settle that follows its own
commit, so no successor waits for the sweep unless a process died between the two.
"""

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from .. import counters, sending
from ..models import Computation, ComputationQuerySet, InputValue, Status, Workflow, WorkflowEdge
from ..operations import REGISTRY, OperationError, gettext_noop

logger = logging.getLogger(__name__)

BLOCKING = (Status.FAILED, Status.CANCELLED)
# Why a step was not run: the nearest step it depends on that did not succeed.
NOT_RUN = {
    Status.FAILED: gettext_noop("Not run: step %(step)s, which it depends on, failed."),
    Status.CANCELLED: gettext_noop("Not run: step %(step)s, which it depends on, was cancelled."),
}
# Workflows the sweep settles at once: the oldest first.
SWEEP_LIMIT = 100


def on_computations_ended(sender: type[Computation], *, rows: ComputationQuerySet, **kwargs: object) -> None:
    """The workflows of these ended steps, settled (a step ended not run is settled by what ended it)."""
    workflows = rows.filter(workflow__isnull=False).exclude(status=Status.NOT_RUN).values_list("workflow_id", flat=True)
    settle(set(workflows))


def settle(workflow_ids: Iterable[int]) -> None:
    for pk in sorted(workflow_ids):
        _settle(pk)


def settle_stuck(now: datetime | None = None) -> int:
    """The sweep's part: workflows not ended where no step is queued or running, older than a heartbeat's grace
    (a worker that died between a step's end and its settle left them so). How many were settled."""
    now = now or timezone.now()
    moving = Computation.objects.filter(workflow=OuterRef("pk"), status__in=(Status.QUEUED, Status.RUNNING))
    grace = timedelta(seconds=settings.COMPUTATION_STALE_AFTER_SECONDS)
    stuck = list(
        Workflow.objects.filter(ended_at__isnull=True, created_at__lt=now - grace)
        .exclude(Exists(moving))
        .order_by("pk")
        .values_list("pk", flat=True)[:SWEEP_LIMIT]
    )
    settle(stuck)
    return len(stuck)


def _settle(pk: int) -> None:
    sent: list[int] = []
    # A change can make another (a step failed for a result it cannot take holds back its own successors): again
    # until nothing changes, at most once per step.
    for _ in range(Workflow.objects.filter(pk=pk).values_list("size", flat=True).first() or 0):
        with transaction.atomic():
            changed, released = _settle_once(pk, timezone.now())
        sent += released
        if not changed:
            break
    if sent:
        sending.dispatch(sent)
    workflow = Workflow.objects.filter(pk=pk)
    if workflow.end(timezone.now()):
        logger.info("workflow %s ended", pk)
    else:
        workflow.reopen()


def _settle_once(pk: int, now: datetime) -> tuple[bool, list[int]]:
    steps = {
        row["step"]: row
        for row in Computation.objects.filter(workflow_id=pk).values(
            "pk", "step", "status", "operation", "inputs", "result"
        )
    }
    edges = list(WorkflowEdge.objects.filter(workflow_id=pk).values_list("source", "target", "input", "position"))
    sources: dict[int, set[int]] = {number: set() for number in steps}
    for source, target, _, _ in edges:
        sources[target].add(source)
    blocked = _blocked_by(steps, sources)
    changed = False
    for number, blocker in sorted(blocked.items()):
        if steps[number]["status"] == Status.WAITING:
            error = OperationError(NOT_RUN[steps[blocker]["status"]], {"step": blocker})
            if _rows(steps[number]).hold_back(error=error, now=now):
                operation = steps[number]["operation"]
                transaction.on_commit(lambda o=operation: counters.record_finished(o, Status.NOT_RUN))
                changed = True
    for number, step in steps.items():
        if step["status"] == Status.NOT_RUN and number not in blocked:
            changed |= bool(_rows(step).wait_again(now))
    released = []
    for number, step in sorted(steps.items()):
        if step["status"] != Status.WAITING or number in blocked:
            continue
        if all(steps[source]["status"] == Status.SUCCEEDED for source in sources[number]):
            if _release(step, steps, [edge for edge in edges if edge[1] == number], now):
                released.append(step["pk"])
            changed = True
    return changed, released


def _blocked_by(steps: dict[int, dict], sources: dict[int, set[int]]) -> dict[int, int]:
    """Each step that depends, directly or not, on a failed or cancelled one: {step: the nearest such one}."""
    blocked: dict[int, int] = {}

    def blocker(number: int, seen: frozenset[int]) -> int | None:
        if number in blocked:
            return blocked[number]
        for source in sorted(sources[number]):
            if source in seen:
                continue  # not in a checked plan; a loop is never followed
            if steps[source]["status"] in BLOCKING:
                return source
            if (found := blocker(source, seen | {number})) is not None:
                return found
        return None

    for number in sorted(steps):
        if (found := blocker(number, frozenset())) is not None:
            blocked[number] = found
    return blocked


def _rows(step: dict) -> ComputationQuerySet:
    return Computation.objects.filter(pk=step["pk"])


def _release(step: dict, steps: dict[int, dict], edges: list[tuple], now: datetime) -> bool:
    """Fills a waiting step's inputs with the results it takes and queues it, or fails it when one does not fit its
    input. Whether this settle queued it (another may have first)."""
    operation = REGISTRY.get(step["operation"])
    inputs, filled = dict(step["inputs"]), {}
    try:
        if operation is None:
            raise OperationError(gettext_noop("Unknown operation."))
        specs = {spec.name: spec for spec in operation.inputs}
        for source, _, name, position in edges:
            if not name:
                continue  # waits only
            spec = specs[name]
            value = spec.serialize_one(spec.accept_result(steps[source]["result"], step=source))
            filled[f"{name}.{position}"] = value
            if position is None:
                inputs[name] = value
            else:
                inputs[name] = [*inputs[name]]
                inputs[name][position] = value
        operation.validate(operation.parse_inputs(inputs))
    except OperationError as error:
        if _rows(step).refuse(error=error, now=now):
            transaction.on_commit(lambda: counters.record_finished(step["operation"], Status.FAILED))
        return False
    if not _rows(step).release(inputs=inputs, now=now):
        return False
    # The search finds it by the values it was given now (those given at submission are indexed already; a retried
    # step's, the first time it was released).
    InputValue.objects.bulk_create(InputValue.of([(step["pk"], filled)]), ignore_conflicts=True)
    return True
