"""The use cases: the only ways to create or change a computation.

Views, the admin, the sweep and management commands call these; none of them talks to Celery directly.
"""

import contextlib
import logging
import uuid

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnreachable
from redis.exceptions import RedisError

from . import changes, jobs
from .models import Computation
from .operations import Inputs, Operation

logger = logging.getLogger(__name__)

# Celery's own limits sit above the run's cooperative one (checked at each progress report): the soft one stops
# an operation stuck between reports, the hard one kills its process.
SOFT_LIMIT_MARGIN, HARD_LIMIT_MARGIN = 10, 20


QUEUE_CHECK_SECONDS = 1
QUEUE_FULL_KEY = "dashboard:queue-full"


class QueueFull(Exception):
    """COMPUTATION_MAX_QUEUED computations are waiting already; nothing was recorded."""


def submit(
    *, operation: Operation, inputs: Inputs, work_seconds: int = 0, idempotency_key: uuid.UUID | None = None
) -> Computation:
    """Records a computation and sends its task once the transaction commits. `inputs` are validated (forms do
    it). A second submission with the same idempotency key returns the first computation instead."""
    if _queue_is_full():
        raise QueueFull
    try:
        with transaction.atomic():
            computation = Computation.objects.create(
                operation=operation.name,
                inputs=operation.serialize_inputs(inputs),
                work_seconds=work_seconds,
                idempotency_key=idempotency_key,
                # Sent right after the commit; if that fails, enqueue() clears it for the sweep to see.
                enqueued_at=timezone.now(),
            )
    except IntegrityError:
        # The same form posted again (a double click, a browser's retry): the first row holds the unique key.
        if idempotency_key and (existing := Computation.objects.filter(idempotency_key=idempotency_key).first()):
            return existing
        raise
    transaction.on_commit(changes.record_change)
    transaction.on_commit(lambda: enqueue(computation))
    return computation


def _queue_is_full() -> bool:
    """Computation.objects.queue_is_full(), asked of the database at most once a second (the answer is shared
    in the cache): the cap guards against an unbounded backlog, and a second's overshoot does not matter to it."""
    try:
        full = cache.get(QUEUE_FULL_KEY)
    except RedisError:
        return Computation.objects.queue_is_full()
    if full is None:
        full = Computation.objects.queue_is_full()
        with contextlib.suppress(RedisError):
            cache.set(QUEUE_FULL_KEY, full, timeout=QUEUE_CHECK_SECONDS)
    return full


def cancel(*, computation_id: int) -> bool:
    """Cancels a queued or running computation; False when it has already ended."""
    return bool(Computation.objects.filter(pk=computation_id).cancel())


def retry(*, computation_id: int) -> bool:
    """Queues a failed or cancelled computation again; False when it is not in one of those states."""
    rows = Computation.objects.filter(pk=computation_id)
    with transaction.atomic():
        if not rows.requeue():
            return False
        computation = rows.get()
        transaction.on_commit(lambda: enqueue(computation))
    return True


def sweep(*, queue_is_empty: bool, limit: int = 1000) -> int:
    """Sends again the tasks of rows that would otherwise never end (see needing_a_task); returns how many.

    A task sent twice is harmless: the second finds its row claimed or ended and does nothing.
    """
    stuck = list(Computation.objects.needing_a_task(queue_is_empty=queue_is_empty)[:limit])
    sent = [computation.pk for computation in stuck if enqueue(computation, record=False)]
    if sent:
        Computation.objects.filter(pk__in=sent).update(enqueued_at=timezone.now())
        logger.warning("sweep: sent the tasks of %d stuck computations again: %s", len(sent), sent[:20])
    return len(sent)


def enqueue(computation: Computation, *, record: bool = True) -> bool:
    """Sends the computation's task; False, and the row marked unsent for the sweep, when the broker is down."""
    time_limit = (computation.spec.time_limit if computation.spec else 0) + computation.work_seconds
    try:
        jobs.run_computation.apply_async(
            (computation.pk, computation.operation, computation.inputs, computation.work_seconds),
            task_id=str(computation.task_id),
            soft_time_limit=time_limit + SOFT_LIMIT_MARGIN,
            time_limit=time_limit + HARD_LIMIT_MARGIN,
        )
    except BrokerUnreachable:
        logger.warning("broker unreachable: computation %s stays queued until the sweep sends it", computation.pk)
        if record:
            Computation.objects.filter(pk=computation.pk).update(enqueued_at=None)
        return False
    return True
