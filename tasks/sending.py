"""Sending computations' tasks to the broker: once when they are submitted or retried, and again by the sweep
when they got stuck. With the broker down, what was not handed over is marked unsent, for the sweep to send.

A task sent twice is harmless: the second finds its row claimed or ended and does nothing.
"""

import logging
from collections import Counter
from collections.abc import Collection, Sequence

from django.conf import settings
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnreachable
from redis.exceptions import RedisError

from . import broker, queues
from .models import Computation, Status
from .redis_clients import durable

logger = logging.getLogger(__name__)

# Celery's own limits sit above the run's cooperative one (checked at each progress report): the soft one stops
# an operation stuck between reports, the hard one kills its process. Both leave room for a database outage that
# a run waits out (COMPUTATION_DATABASE_RETRY_SECONDS), which the cooperative limit does not count.
SOFT_LIMIT_MARGIN, HARD_LIMIT_MARGIN = 10, 20
# More tasks than this are sent by workers, SEND_CHUNK at a time: the web sends one message per chunk, so a batch
# of 1,000 costs its POST 10 messages rather than 1,000 (about 0.7 ms each).
SEND_CHUNK = 100


def sweep(*, empty_queues: Collection[str], limit: int = 1000) -> int:
    """Sends again the tasks of rows that would otherwise never end (see needing_a_task); returns how many."""
    stuck = list(Computation.objects.needing_a_task(empty_queues=empty_queues)[:limit])
    sent = enqueue_many(stuck, record=False)
    if sent:
        Computation.objects.filter(pk__in=sent).update(enqueued_at=timezone.now())
        logger.warning("sweep: sent the tasks of %d stuck computations again: %s", len(sent), sent[:20])
    return len(sent)


def dispatch(pks: Sequence[int], *, queue: str | None = None) -> None:
    """Sends the tasks of these queued computations: up to SEND_CHUNK directly, more through workers, one
    `send_tasks` message per chunk, in the computations' own queue (a heavy batch fans out on heavy workers, and
    pausing the heavy queue holds all of it): `queue` when the caller knows they all go to one. With the broker
    down, the chunks not handed over are left to the sweep."""
    if len(pks) <= SEND_CHUNK:
        enqueue_many(list(Computation.objects.filter(pk__in=pks, status=Status.QUEUED).order_by("pk")))
        return
    by_queue: dict[str, list[int]] = {queue: list(pks)} if queue else {}
    if not queue:
        for pk, operation, work_seconds in (
            Computation.objects.filter(pk__in=pks).order_by("pk").values_list("pk", "operation", "work_seconds")
        ):
            by_queue.setdefault(queues.for_computation(operation, work_seconds), []).append(pk)
    chunks = [
        (queue, members[start : start + SEND_CHUNK])
        for queue, members in by_queue.items()
        for start in range(0, len(members), SEND_CHUNK)
    ]
    handed = 0
    try:
        with broker.producer() as producer:
            for chunk_queue, chunk in chunks:
                broker.send(broker.SEND_TASKS, chunk, via=producer, queue=chunk_queue)
                handed += 1
    except BrokerUnreachable:
        unsent = [pk for _, chunk in chunks[handed:] for pk in chunk]
        logger.warning("broker unreachable: %d computations stay queued until the sweep sends them", len(unsent))
        Computation.objects.filter(pk__in=unsent).update(enqueued_at=None)
    _count_sent(Counter(chunk_queue for chunk_queue, _ in chunks[:handed]))


def enqueue(computation: Computation, *, record: bool = True) -> bool:
    """Sends the computation's task; False, and the row marked unsent for the sweep, when the broker is down."""
    return bool(enqueue_many([computation], record=record))


def enqueue_many(computations: Sequence[Computation], *, record: bool = True) -> list[int]:
    """Sends the computations' tasks over one connection to the broker; returns the ids sent. With the broker
    down the rest stay queued, marked unsent (`record`) for the sweep."""
    sent: list[int] = []
    per_queue: Counter[str] = Counter()
    try:
        with broker.producer() as producer:
            for computation in computations:
                limit = computation.time_limit + settings.COMPUTATION_DATABASE_RETRY_SECONDS
                queue = queues.for_computation(computation.operation, computation.work_seconds)
                broker.send(
                    broker.RUN_COMPUTATION,
                    computation.pk,
                    computation.operation,
                    computation.inputs,
                    computation.work_seconds,
                    computation.created_at.timestamp(),
                    via=producer,
                    queue=queue,
                    task_id=str(computation.task_id),
                    soft_time_limit=limit + SOFT_LIMIT_MARGIN,
                    time_limit=limit + HARD_LIMIT_MARGIN,
                )
                sent.append(computation.pk)
                per_queue[queue] += 1
    except BrokerUnreachable:
        unsent = [computation.pk for computation in computations if computation.pk not in set(sent)]
        logger.warning("broker unreachable: %d computations stay queued until the sweep sends them", len(unsent))
        if record:
            Computation.objects.filter(pk__in=unsent).update(enqueued_at=None)
    _count_sent(per_queue)
    return sent


def _count_sent(per_queue: Counter[str]) -> None:
    """The queues' rate in (tasks.queues); best effort, like the metrics."""
    if not per_queue:
        return
    try:
        pipe = durable().pipeline(transaction=False)
        queues.count("in", per_queue, pipe)
        pipe.execute()
    except RedisError:
        logger.debug("messages sent not counted: Redis unreachable")
