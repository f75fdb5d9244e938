"""Schedules (tasks.models.Schedule): creating, pausing, resuming, running now, deleting, and firing them when due.

Beat (celery-redbeat's scheduler, which keeps one beat active and a standby waiting on its lock) sends
`fire_schedules` every few seconds. A due schedule is claimed by locking its row where next_run_at still holds the
due time, and in that one transaction its next due time is written, its run recorded and its computation
submitted (services.submit, whose task is sent on commit): a second beat, or the task delivered twice, finds the
due time gone, and the run's unique (schedule, due time) would refuse it anyway. A run due longer than
SCHEDULE_MISSED_AFTER_SECONDS ago was missed (nothing could fire it): it runs once, or is recorded as skipped, as
the schedule says; the next due time is always the first after now, so missed periods never pile up.
"""

import datetime
import logging
from collections.abc import Mapping

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from . import queues, services
from .models import AuditEntry, Schedule, ScheduleRun
from .operations import REGISTRY, Inputs, Operation, OperationError

logger = logging.getLogger(__name__)

# At most this many due schedules are fired by one run of fire_schedules; the next run takes the rest.
FIRE_BATCH = 100
# Why a run was refused for want of room: in the whole queue, or in its owner's share (QueueFull.yours).
QUEUE_FULL_REASONS = {
    False: gettext_noop("The queue is full."),
    True: gettext_noop("Its owner has as many computations waiting as one person may have."),
}


class TooManySchedules(Exception):
    """The owner (or, made without signing in, the client address) has SCHEDULE_MAX schedules already, or there are
    SCHEDULE_MAX_TOTAL in all (`in_all`): nothing was written."""

    def __init__(self, *, in_all: bool = False):
        super().__init__("SCHEDULE_MAX_TOTAL" if in_all else "SCHEDULE_MAX")
        self.in_all = in_all


TIMING = ("kind", "run_at", "every", "unit", "cron", "catch_up")


def timing(data: Mapping[str, object]) -> dict[str, object]:
    """When a schedule runs, as `create` takes it, from a form's cleaned data (the Schedules form and the admin's
    name their fields as `create` does)."""
    return {name: data[name] for name in TIMING}


def create(
    *,
    name: str,
    operation: Operation,
    inputs: Inputs,
    work_seconds: int,
    kind: str,
    run_at: datetime.datetime | None,
    every: int | None,
    unit: str,
    cron: str,
    catch_up: bool,
    owner: AbstractBaseUser | None,
    actor: services.Actor,
    address: str | None = None,
) -> Schedule:
    """A validated schedule (the forms check it), with its first due time. Only the fields of its kind are kept.
    `owner`'s, or made from `address` without signing in: its runs count against that client's share of the queue."""
    # Two creations at once may both pass: the caps bound the table, one more does not matter to it.
    if Schedule.objects.count() >= settings.SCHEDULE_MAX_TOTAL:
        raise TooManySchedules(in_all=True)
    address = None if owner else address
    if Schedule.objects.filter(owner=owner, created_from=address).count() >= settings.SCHEDULE_MAX:
        raise TooManySchedules
    with transaction.atomic():
        schedule = Schedule(
            name=name,
            operation=operation.name,
            inputs=operation.serialize_inputs(inputs),
            work_seconds=work_seconds,
            kind=kind,
            run_at=run_at if kind == Schedule.Kind.ONCE else None,
            every=every if kind == Schedule.Kind.EVERY else None,
            unit=unit if kind == Schedule.Kind.EVERY else "",
            cron=" ".join(cron.split()) if kind == Schedule.Kind.CRON else "",
            catch_up=catch_up,
            owner=owner,
            created_from=address,
        )
        schedule.next_run_at = schedule.next_after(timezone.now())
        schedule.save()
        _audit(AuditEntry.Action.CREATE_SCHEDULE, actor, schedule)
    return schedule


def least_gap(operation: str, work_seconds: int) -> datetime.timedelta:
    """How often at most a schedule may run this computation: SCHEDULE_MIN_INTERVAL_SECONDS, or for heavy work
    SCHEDULE_MIN_HEAVY_INTERVAL_SECONDS (a heavy queue drains slowly; a schedule must not outrun it)."""
    heavy = queues.for_computation(operation, work_seconds) == queues.HEAVY
    seconds = settings.SCHEDULE_MIN_HEAVY_INTERVAL_SECONDS if heavy else settings.SCHEDULE_MIN_INTERVAL_SECONDS
    return datetime.timedelta(seconds=seconds)


def pause(schedule: Schedule, actor: services.Actor) -> bool:
    with transaction.atomic():
        changed = Schedule.objects.filter(pk=schedule.pk, paused=False).update(paused=True)
        if changed:
            _audit(AuditEntry.Action.PAUSE_SCHEDULE, actor, schedule)
    return bool(changed)


def resume(schedule: Schedule, actor: services.Actor) -> bool:
    """Due next at the first due time after now: what fell due while it was paused was meant not to run."""
    with transaction.atomic():
        locked = Schedule.objects.select_for_update().filter(pk=schedule.pk, paused=True).first()
        if locked is None:
            return False
        locked.paused = False
        if locked.next_run_at is not None:
            locked.next_run_at = locked.next_after(timezone.now())
        locked.save(update_fields=["paused", "next_run_at"])
        _audit(AuditEntry.Action.RESUME_SCHEDULE, actor, schedule)
    return True


def run_now(schedule: Schedule, actor: services.Actor) -> ScheduleRun:
    """One run at once, apart from the due times (which stay as they were)."""
    now = timezone.now()
    with transaction.atomic():
        run = _run(schedule, due=now, now=now, manual=True)
        _audit(AuditEntry.Action.RUN_SCHEDULE, actor, schedule, ids=[run.computation_id] if run.computation_id else [])
    return run


def delete(schedule: Schedule, actor: services.Actor) -> None:
    """The schedule and its runs go; the computations it created stay."""
    with transaction.atomic():
        _audit(AuditEntry.Action.DELETE_SCHEDULE, actor, schedule)
        schedule.delete()


# What a person may do to a schedule, by the names the pages and the API use.
ACTIONS = {"pause": pause, "resume": resume, "run": run_now, "delete": delete}


def fire_due(now: datetime.datetime | None = None) -> int:
    """Fires the schedules whose due time has passed; how many runs this recorded."""
    now = now or timezone.now()
    due = Schedule.objects.filter(paused=False, next_run_at__lte=now).order_by("next_run_at")
    return sum(_fire(pk, due_at, now) for pk, due_at in due.values_list("pk", "next_run_at")[:FIRE_BATCH])


def _fire(pk: int, due: datetime.datetime, now: datetime.datetime) -> bool:
    with transaction.atomic():
        schedule = Schedule.objects.select_for_update().filter(pk=pk, paused=False, next_run_at=due).first()
        if schedule is None:
            return False  # fired by another beat's task, or paused or deleted meanwhile
        schedule.next_run_at = schedule.next_after(now)
        schedule.save(update_fields=["next_run_at"])
        missed = now - due > datetime.timedelta(seconds=settings.SCHEDULE_MISSED_AFTER_SECONDS)
        if missed and not schedule.catch_up:
            ScheduleRun.objects.create(
                schedule=schedule,
                due_at=due,
                fired_at=now,
                outcome=ScheduleRun.Outcome.SKIPPED,
                reason=gettext_noop("Missed while nothing could run it; this schedule skips missed runs."),
            )
        else:
            _run(schedule, due=due, now=now, manual=False)
    if missed:
        logger.warning(
            "schedule %s: the run due at %s was missed (%s)",
            pk,
            due,
            "skipped" if not schedule.catch_up else "run once now",
        )
    return True


def _run(schedule: Schedule, *, due: datetime.datetime, now: datetime.datetime, manual: bool) -> ScheduleRun:
    """Submits the schedule's computation, as a person would (services.submit: rows, owner, queue cap, metrics),
    and records the run, submitted or refused with the reason."""
    outcome, reason, computation = ScheduleRun.Outcome.SUBMITTED, "", None
    spec = REGISTRY.get(schedule.operation)
    try:
        if spec is None:
            raise OperationError(gettext_noop("Unknown operation %(name)s."), {"name": schedule.operation})
        inputs = spec.parse_inputs(schedule.inputs)
        spec.validate(inputs)
        with transaction.atomic():  # a savepoint: a refusal leaves the run to be recorded
            computation = services.submit(
                operation=spec,
                inputs=inputs,
                work_seconds=schedule.work_seconds,
                owner=schedule.owner,
                address=schedule.created_from,
            )
    except services.QueueFull as full:
        outcome, reason = ScheduleRun.Outcome.REFUSED, QUEUE_FULL_REASONS[full.yours]
    except OperationError as error:
        outcome, reason = ScheduleRun.Outcome.REFUSED, error.message % error.params if error.params else error.message
    return ScheduleRun.objects.create(
        schedule=schedule,
        due_at=due,
        fired_at=now,
        manual=manual,
        outcome=outcome,
        reason=reason,
        computation=computation,
    )


def _audit(action: str, actor: services.Actor, schedule: Schedule, *, ids: list[int] | None = None) -> None:
    services.audit(action, actor, {"schedule": schedule.pk, "name": schedule.name}, ids=ids or (), changed=1)


def reason_text(run: ScheduleRun) -> str:
    return gettext(run.reason) if run.reason else ""
