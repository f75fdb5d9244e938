"""Sending computations' tasks to the broker: once when they are submitted or retried, and again by the sweep
when they got stuck. With the broker down, what was not handed over is marked unsent, for the sweep to send.

A task sent twice is harmless: the second finds its row claimed or ended and does nothing.
"""

import logging
from collections.abc import Sequence

from django.conf import settings
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnreachable

from . import broker
from .models import Computation, Status

logger = logging.getLogger(__name__)

# Celery's own limits sit above the run's cooperative one (checked at each progress report): the soft one stops
# an operation stuck between reports, the hard one kills its process. Both leave room for a database outage that
# a run waits out (COMPUTATION_DATABASE_RETRY_SECONDS), which the cooperative limit does not count.
SOFT_LIMIT_MARGIN, HARD_LIMIT_MARGIN = 10, 20
# More tasks than this are sent by workers, SEND_CHUNK at a time: the web sends one message per chunk, so a batch
# of 1,000 costs its POST 10 messages rather than 1,000 (about 0.7 ms each).
SEND_CHUNK = 100


def sweep(*, queue_is_empty: bool, limit: int = 1000) -> int:
    """Sends again the tasks of rows that would otherwise never end (see needing_a_task); returns how many."""
    stuck = list(Computation.objects.needing_a_task(queue_is_empty=queue_is_empty)[:limit])
    sent = enqueue_many(stuck, record=False)
    if sent:
        Computation.objects.filter(pk__in=sent).update(enqueued_at=timezone.now())
        logger.warning("sweep: sent the tasks of %d stuck computations again: %s", len(sent), sent[:20])
    return len(sent)


def dispatch(pks: Sequence[int]) -> None:
    """Sends the tasks of these queued computations: up to SEND_CHUNK directly, more through workers, one
    `send_tasks` message per chunk. With the broker down, the chunks not handed over are left to the sweep."""
    if len(pks) <= SEND_CHUNK:
        enqueue_many(list(Computation.objects.filter(pk__in=pks, status=Status.QUEUED).order_by("pk")))
        return
    chunks = [list(pks[start : start + SEND_CHUNK]) for start in range(0, len(pks), SEND_CHUNK)]
    handed = 0
    try:
        with broker.producer() as producer:
            for chunk in chunks:
                broker.send(broker.SEND_TASKS, chunk, via=producer)
                handed += 1
    except BrokerUnreachable:
        unsent = [pk for chunk in chunks[handed:] for pk in chunk]
        logger.warning("broker unreachable: %d computations stay queued until the sweep sends them", len(unsent))
        Computation.objects.filter(pk__in=unsent).update(enqueued_at=None)


def enqueue(computation: Computation, *, record: bool = True) -> bool:
    """Sends the computation's task; False, and the row marked unsent for the sweep, when the broker is down."""
    return bool(enqueue_many([computation], record=record))


def enqueue_many(computations: Sequence[Computation], *, record: bool = True) -> list[int]:
    """Sends the computations' tasks over one connection to the broker; returns the ids sent. With the broker
    down the rest stay queued, marked unsent (`record`) for the sweep."""
    sent: list[int] = []
    try:
        with broker.producer() as producer:
            for computation in computations:
                limit = computation.time_limit + settings.COMPUTATION_DATABASE_RETRY_SECONDS
                broker.send(
                    broker.RUN_COMPUTATION,
                    computation.pk,
                    computation.operation,
                    computation.inputs,
                    computation.work_seconds,
                    computation.created_at.timestamp(),
                    via=producer,
                    task_id=str(computation.task_id),
                    soft_time_limit=limit + SOFT_LIMIT_MARGIN,
                    time_limit=limit + HARD_LIMIT_MARGIN,
                )
                sent.append(computation.pk)
    except BrokerUnreachable:
        unsent = [computation.pk for computation in computations if computation.pk not in set(sent)]
        logger.warning("broker unreachable: %d computations stay queued until the sweep sends them", len(unsent))
        if record:
            Computation.objects.filter(pk__in=unsent).update(enqueued_at=None)
    return sent
