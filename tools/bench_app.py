"""The benchmark's baselines: a bare Celery app with no-op tasks, on the same broker and with the same worker
settings as the dashboard's (late acknowledgement, one prefetched task, JSON, events), without Django.

The benchmark runs a worker of it (`celery --app tools.bench_app worker`) beside the stack's own.
"""

import os

import redis
from celery import Celery

# Not the current app: the benchmark process sends the dashboard's own tasks too, through the dashboard's app.
app = Celery("bench", broker=os.environ["REDIS_URL"], backend=os.environ["BENCH_RESULT_URL"], set_as_current=False)
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    worker_send_task_events=True,
    task_default_queue="bench",
    broker_connection_retry_on_startup=True,
)
DONE_KEY = "bench:done"
_counter = redis.Redis.from_url(os.environ["BENCH_RESULT_URL"])


@app.task(name="bench.noop")
def noop() -> None:
    """The raw round trip: apply_async().get() of this."""


@app.task(name="bench.noop_counted", ignore_result=True)
def noop_counted() -> None:
    """For throughput: counts itself, so the benchmark can tell when a batch is done."""
    _counter.incr(DONE_KEY)
