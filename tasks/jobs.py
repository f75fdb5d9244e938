"""The Celery task: claims a row, runs its operation, records the outcome.

Delivery is at least once (late acknowledgement, requeue when a worker dies); the conditional transitions of
tasks.models make a second delivery harmless, so no computation is lost and none is recorded twice.
"""

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.utils.log import get_task_logger
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.utils import timezone
from redis.exceptions import RedisError

from . import broker, counters, operations, queues, redis_clients, retention, rollups, scheduling, sending
from .models import Computation, ComputationQuerySet, Status
from .operations import REGISTRY, Operation, OperationError, ProgressCallback, TimeLimitExceeded, gettext_noop
from .webhooks import delivering, posting
from .workflows import settling

logger = get_task_logger(__name__)

# Progress is written when it moves, at most this often; the heartbeat is written at least every
# COMPUTATION_HEARTBEAT_SECONDS even when it does not move.
PROGRESS_WRITE_INTERVAL = 0.25
SWEEP_LOCK = "dashboard:sweep:lock"
UNEXPECTED = gettext_noop("The computation stopped on an unexpected error.")
SWEEP_LAST = "dashboard:sweep:last"
ROLL_UP_LOCK = "dashboard:roll-up:lock"
PRUNE_LOCK = "dashboard:prune:lock"
WEBHOOKS_DUE_LOCK = "dashboard:webhooks-due:lock"
# A run of deliver_due_webhooks may take its attempts' time, the last one's deadline, and a margin.
WEBHOOKS_DUE_SECONDS = delivering.DUE_SECONDS + posting.DEADLINE_SECONDS + 60


def persist[T](write: Callable[[], T]) -> T:
    """Runs a read or write of the row, retrying while the database is unreachable, so a short outage delays a
    run instead of failing it. Gives up (raises) after COMPUTATION_DATABASE_RETRY_SECONDS."""
    deadline = time.monotonic() + settings.COMPUTATION_DATABASE_RETRY_SECONDS
    delay = 0.5
    while True:
        try:
            return write()
        except (OperationalError, InterfaceError) as error:
            if time.monotonic() + delay > deadline:
                raise
            logger.warning("database unreachable (%s); trying again in %.1f s", error, delay)
            connection.close()  # a broken connection is not reused
            time.sleep(delay)
            delay = min(delay * 2, 5)


class RunStopped(Exception):
    """The row is no longer this run's: it was cancelled, or taken over after its heartbeat went stale."""


class ProgressWriter:
    def __init__(self, rows: ComputationQuerySet, attempt: int):
        self.rows, self.attempt = rows, attempt
        self.percent, self.written = 0, time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        # 100 % is written by the outcome, never by a progress report.
        percent = min(done * 100 // total, 99) if total else 0
        elapsed = time.monotonic() - self.written
        moved = percent != self.percent and elapsed >= PROGRESS_WRITE_INTERVAL
        if moved or elapsed >= settings.COMPUTATION_HEARTBEAT_SECONDS:
            if not persist(lambda: self.rows.report_progress(attempt=self.attempt, progress=percent)):
                raise RunStopped
            self.percent, self.written = percent, time.monotonic()


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended: its result, or the error it failed with."""

    result: str = ""
    error: OperationError | None = None

    @property
    def status(self) -> Status:
        return Status.FAILED if self.error else Status.SUCCEEDED


def compute(name: str, inputs: dict, *, work_seconds: int, progress: ProgressCallback) -> RunOutcome:
    """Runs operation `name`: every way it can end is a RunOutcome, but a stop (RunStopped) and a lost database, which
    leave the row to whoever holds it next."""
    spec = REGISTRY.get(name)
    if spec is None:
        return RunOutcome(error=OperationError(gettext_noop("Unknown operation %(name)s."), {"name": name}))
    try:
        parsed = spec.parse_inputs(inputs)
        spec.validate(parsed)  # the services checked them; a row written by other means gets the same answer
        return RunOutcome(result=operations.run(spec, parsed, work_seconds=work_seconds, report_progress=progress))
    except OperationError as error:
        return RunOutcome(error=error)
    except SoftTimeLimitExceeded:
        return RunOutcome(error=TimeLimitExceeded(spec.limit_for(work_seconds)))
    except (RunStopped, OperationalError, InterfaceError):
        raise
    except Exception:
        logger.exception("%s raised", name)
        return RunOutcome(error=OperationError(UNEXPECTED))


def record(
    operation: str, outcome: RunOutcome, write: Callable[[], int], *, started: datetime, created: datetime | None
) -> bool:
    """Writes an outcome through `write`, a conditional UPDATE that a superseded run's changes nothing, and counts
    it in the metrics when it was written (its time since submission when that is known). Whether it was."""
    if not persist(write):
        return False
    ended = timezone.now()
    counters.record_finished(
        operation,
        outcome.status,
        run_seconds=(ended - started).total_seconds(),
        end_to_end_seconds=(ended - created).total_seconds() if created else None,
    )
    return True


@shared_task(bind=True, name=broker.RUN_COMPUTATION, max_retries=60)
def run_computation(
    self: Task,
    computation_id: int,
    operation: str | None = None,
    inputs: dict | None = None,
    work_seconds: int = 0,
    created: float | None = None,
) -> None:
    """Runs one computation. The message carries its operation and inputs (a row's are never changed), so an
    instant computation is computed and recorded without reading the row first."""
    rows = Computation.objects.filter(pk=computation_id)
    spec = REGISTRY.get(operation or "")
    if spec and inputs is not None and spec.is_instant(work_seconds):
        submitted = datetime.fromtimestamp(created, UTC) if created else None
        if _run_at_once(self, computation_id, spec, inputs, submitted):
            return
    # Not instant, or not queued any more (cancelled, ended, or left running by a worker that died): the claim
    # tells which, and takes over a dead worker's row.
    try:
        claimed = persist(lambda: rows.claim(worker=self.request.hostname or ""))
    except (OperationalError, InterfaceError) as error:
        raise self.retry(countdown=settings.COMPUTATION_STALE_AFTER_SECONDS, exc=error) from error
    if claimed:
        _run_claimed(rows)
    else:
        _not_claimed(self, rows)


def _run_at_once(task: Task, pk: int, spec: Operation, inputs: dict, created: datetime | None) -> bool:
    """An instant computation: computed, then recorded in one conditional UPDATE (ComputationQuerySet.record_at_once),
    which only a queued row takes. Whether it was recorded."""
    rows, started, worker = Computation.objects.filter(pk=pk), timezone.now(), task.request.hostname or ""
    logger.info("computation %s instant run started", pk)
    outcome = compute(spec.name, inputs, work_seconds=0, progress=lambda done, total: None)
    write = partial(rows.record_at_once, worker=worker, started_at=started, result=outcome.result, error=outcome.error)
    try:
        recorded = record(spec.name, outcome, write, started=started, created=created)
    except (OperationalError, InterfaceError) as failure:
        raise task.retry(countdown=settings.COMPUTATION_STALE_AFTER_SECONDS, exc=failure) from failure
    logger.info("computation %s instant run %s", pk, "ended" if recorded else "not recorded: the row is not queued")
    return recorded


def _run_claimed(rows: ComputationQuerySet) -> None:
    """A claimed row: run with progress reports, which stop the run once the row is no longer this attempt's."""
    computation = persist(rows.get)
    attempt = computation.attempts
    logger.info("computation %s attempt %s started", computation.pk, attempt)
    try:
        outcome = compute(
            computation.operation,
            computation.inputs,
            work_seconds=computation.work_seconds,
            progress=ProgressWriter(rows, attempt),
        )
    except RunStopped:
        logger.info("computation %s attempt %s stopped: cancelled or taken over", computation.pk, attempt)
        return
    except (OperationalError, InterfaceError):
        # The database stayed away longer than the retries: the row keeps running until its heartbeat goes
        # stale and the sweep sends it again.
        logger.exception("computation %s attempt %s lost the database", computation.pk, attempt)
        raise
    if outcome.error:
        write = partial(rows.fail, attempt=attempt, error=outcome.error)
    else:
        write = partial(rows.succeed, attempt=attempt, result=outcome.result)
    recorded = record(
        computation.operation, outcome, write, started=computation.started_at, created=computation.created_at
    )
    logger.info("computation %s attempt %s %s", computation.pk, attempt, "ended" if recorded else "superseded")


def _not_claimed(task: Task, rows: ComputationQuerySet) -> None:
    computation = persist(rows.first)
    if computation is None or not computation.is_in_flight:
        return  # deleted, or already ended: a duplicate delivery
    gave_up = OperationError(gettext_noop("Gave up: the worker running this computation stopped on each attempt."))
    if persist(lambda: rows.give_up(error=gave_up)):
        logger.warning("computation %s failed: its attempts are used up", computation.pk)
        counters.record_finished(computation.operation, Status.FAILED)
        return
    # Running with a fresh heartbeat: another worker has it, or one that died a moment ago (its task was
    # requeued at once). Look again once such a heartbeat would be stale.
    raise task.retry(countdown=settings.COMPUTATION_STALE_AFTER_SECONDS)


@shared_task(name=broker.SEND_TASKS, ignore_result=True, time_limit=60)
def send_tasks(pks: list[int]) -> None:
    """Sends the tasks of a chunk of computations, those still queued (sending.dispatch hands large sets to
    workers). Delivered again if its worker dies: a task sent twice runs once."""
    sending.enqueue_many(list(Computation.objects.filter(pk__in=pks, status=Status.QUEUED).order_by("pk")))


@contextlib.contextmanager
def alone(lock: str, seconds: int) -> Iterator[bool]:
    """Whether this run of a housekeeping job may go on: it holds `lock` in Redis (for at most `seconds`, released
    when it ends), or Redis cannot say, and the jobs take an overlap in their stride (the sweep sends a task twice,
    which runs once; a prune or a roll-up waits on the other's rows or fails and is done again by the next)."""
    try:
        held = bool(redis_clients.durable().set(lock, 1, nx=True, ex=seconds))
    except RedisError:
        held = True
    try:
        yield held
    finally:
        if held:
            with contextlib.suppress(RedisError):
                redis_clients.durable().delete(lock)


@shared_task(name=broker.SWEEP, ignore_result=True, time_limit=120)
def sweep() -> None:
    """Celery beat runs this every COMPUTATION_SWEEP_SECONDS: no row stays queued or running for good."""
    with alone(SWEEP_LOCK, 120) as first:
        if not first:
            return  # another sweep is still at it
        sending.sweep(empty_queues=[name for name, depth in queues.depths().items() if depth == 0])
        settling.settle_stuck()
    with contextlib.suppress(RedisError):
        redis_clients.durable().set(SWEEP_LAST, time.time())


@shared_task(name=broker.ROLL_UP, ignore_result=True, time_limit=300)
def roll_up() -> None:
    """Celery beat runs this every minute: the rollups reach the last whole minute (tasks.rollups)."""
    with alone(ROLL_UP_LOCK, 300) as first:
        if first:
            rollups.roll_up()


@shared_task(name=broker.PRUNE, ignore_result=True, soft_time_limit=retention.PRUNE_SECONDS + 30)
def prune() -> None:
    """Celery beat runs this every ten minutes: ended computations past retention go."""
    with alone(PRUNE_LOCK, retention.PRUNE_SECONDS + 60) as first:
        if first:
            retention.prune()


@shared_task(name=broker.FIRE_SCHEDULES, ignore_result=True, time_limit=60)
def fire_schedules() -> None:
    """Celery beat runs this every few seconds: the schedules whose time has come submit their computations, each due
    time once however many of these run at once (tasks.scheduling)."""
    scheduling.fire_due()


@shared_task(
    name=broker.DELIVER_WEBHOOKS, ignore_result=True, time_limit=delivering.SEND_CHUNK * posting.DEADLINE_SECONDS + 60
)
def deliver_webhooks(delivery_ids: list[str]) -> None:
    """The first attempts of deliveries just created (tasks.webhooks.events): each made once, however many times this
    is delivered (an attempt claims its delivery)."""
    for delivery_id in delivery_ids:
        delivering.attempt(delivery_id)


@shared_task(name=broker.DELIVER_DUE_WEBHOOKS, ignore_result=True, time_limit=WEBHOOKS_DUE_SECONDS)
def deliver_due_webhooks() -> None:
    """Celery beat runs this every 15 seconds: webhooks' attempts whose time has come (tasks.webhooks.delivering), one
    run at a time."""
    with alone(WEBHOOKS_DUE_LOCK, WEBHOOKS_DUE_SECONDS) as first:
        if first:
            delivering.deliver_due()


def seconds_since_last_sweep() -> float | None:
    """For beat's health check: sweeps that keep coming mean beat, the broker and a worker all work."""
    last = redis_clients.durable().get(SWEEP_LAST)
    return None if last is None else time.time() - float(last)
