"""What goes to the broker and what is read from it, by task name: the services send the worker's tasks from
here and never import the task module (tasks.jobs), which calls the services. No import circle."""

from contextlib import AbstractContextManager

from celery import current_app
from kombu import Producer

# The names tasks.jobs registers its tasks under.
RUN_COMPUTATION = "tasks.run_computation"
SEND_TASKS = "tasks.send_tasks"
SWEEP = "tasks.sweep"
ROLL_UP = "tasks.roll_up"
PRUNE = "tasks.prune"
FIRE_SCHEDULES = "tasks.fire_schedules"
DELIVER_WEBHOOKS = "tasks.deliver_webhooks"
DELIVER_DUE_WEBHOOKS = "tasks.deliver_due_webhooks"


def producer() -> AbstractContextManager[Producer]:
    """One connection to the broker for several messages."""
    return current_app.producer_or_acquire()


def send(name: str, *args: object, via: Producer, **options: object) -> None:
    """Sends task `name` with `args` (JSON), with Celery's sending options (task_id, time limits, ...)."""
    current_app.send_task(name, args=args, producer=via, **options)


def purge(queue: str) -> int:
    """Drops every message waiting in `queue`; how many."""
    with current_app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, interval_start=0)
        return connection.default_channel.queue_purge(queue) or 0
