"""The use cases: the only ways to create or change a computation.

Views, the admin and management commands call these; none of them talks to Celery directly.
"""

import logging

from django.db import transaction
from kombu.exceptions import OperationalError as BrokerUnreachable

from . import changes
from .jobs import run_computation
from .models import Computation
from .operations import Inputs, Operation

logger = logging.getLogger(__name__)

# Celery's own limits sit above the run's cooperative one (checked at each progress report): the soft one stops
# an operation stuck between reports, the hard one kills its process.
SOFT_LIMIT_MARGIN, HARD_LIMIT_MARGIN = 10, 20


def submit(*, operation: Operation, inputs: Inputs, work_seconds: int = 0) -> Computation:
    """Records a computation and queues it once the transaction commits. `inputs` are validated (forms do it)."""
    computation = Computation.objects.create(
        operation=operation.name, inputs=operation.serialize_inputs(inputs), work_seconds=work_seconds
    )
    transaction.on_commit(changes.record_change)
    transaction.on_commit(lambda: enqueue(computation))
    return computation


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


def enqueue(computation: Computation) -> None:
    """Sends the computation's task. With the broker down the row stays queued, to be sent again later."""
    time_limit = (computation.spec.time_limit if computation.spec else 0) + computation.work_seconds
    try:
        run_computation.apply_async(
            (computation.pk,),
            task_id=str(computation.task_id),
            soft_time_limit=time_limit + SOFT_LIMIT_MARGIN,
            time_limit=time_limit + HARD_LIMIT_MARGIN,
        )
    except BrokerUnreachable:
        logger.warning("broker unreachable: computation %s stays queued until it is sent again", computation.pk)
