"""The Celery task: claims a row, runs its operation, records the outcome.

Delivery is at least once (late acknowledgement, requeue when a worker dies); the conditional transitions of
tasks.models make a second delivery harmless, so no computation is lost and none is recorded twice.
"""

import time

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.utils.log import get_task_logger
from django.conf import settings

from . import operations
from .models import Computation, ComputationQuerySet
from .operations import OperationError, TimeLimitExceeded, gettext_noop

logger = get_task_logger(__name__)

# Progress is written when it moves, at most this often; the heartbeat is written at least every
# COMPUTATION_HEARTBEAT_SECONDS even when it does not move.
PROGRESS_WRITE_INTERVAL = 0.25


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
            if not self.rows.report_progress(attempt=self.attempt, progress=percent):
                raise RunStopped
            self.percent, self.written = percent, time.monotonic()


@shared_task(bind=True, name="tasks.run_computation", max_retries=60)
def run_computation(self: Task, computation_id: int) -> None:
    rows = Computation.objects.filter(pk=computation_id)
    if not rows.claim(worker=self.request.hostname or ""):
        _not_claimed(self, rows)
        return
    computation = rows.get()
    attempt, spec = computation.attempts, computation.spec
    logger.info("computation %s attempt %s started", computation_id, attempt)
    try:
        if spec is None:
            raise OperationError(gettext_noop("Unknown operation %(name)s."), {"name": computation.operation})
        result = operations.run(
            spec,
            spec.parse_inputs(computation.inputs),
            work_seconds=computation.work_seconds,
            report_progress=ProgressWriter(rows, attempt),
        )
    except RunStopped:
        logger.info("computation %s attempt %s stopped: cancelled or taken over", computation_id, attempt)
        return
    except OperationError as error:
        outcome = rows.fail(attempt=attempt, error=str(error))
    except SoftTimeLimitExceeded:
        error = TimeLimitExceeded(spec.time_limit + computation.work_seconds)
        outcome = rows.fail(attempt=attempt, error=str(error))
    except Exception:
        logger.exception("computation %s attempt %s raised", computation_id, attempt)
        outcome = rows.fail(attempt=attempt, error=gettext_noop("The computation stopped on an unexpected error."))
    else:
        outcome = rows.succeed(attempt=attempt, result=result)
    logger.info("computation %s attempt %s %s", computation_id, attempt, "ended" if outcome else "superseded")


def _not_claimed(task: Task, rows: ComputationQuerySet) -> None:
    computation = rows.first()
    if computation is None or not computation.is_in_flight:
        return  # deleted, or already ended: a duplicate delivery
    budget_error = gettext_noop("Gave up: the worker running this computation stopped on each attempt.")
    if rows.give_up(error=budget_error):
        logger.warning("computation %s failed: its attempts are used up", computation.pk)
        return
    # Running with a fresh heartbeat: another worker has it, or one that died a moment ago (its task was
    # requeued at once). Look again once such a heartbeat would be stale.
    raise task.retry(countdown=settings.COMPUTATION_STALE_AFTER_SECONDS)
