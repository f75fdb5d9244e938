"""Counters and histograms of computations, kept in Redis (the broker's server, which never evicts them, unlike the
cache) by every process that changes a computation, web replicas and workers on any host alike;
dashboard.operators.metrics reads them when Prometheus scrapes.

One pipelined round trip per record. Metrics are best effort: with Redis unreachable a record is dropped, the
computation is not.
"""

import bisect
import logging

from redis.exceptions import RedisError

from .redis_clients import durable

logger = logging.getLogger(__name__)

# Seconds: from an addition's milliseconds to the longest run (a minute of simulated work and a minute's compute).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
SUBMITTED = "metrics:submitted"
FINISHED = "metrics:finished"
HISTOGRAMS = {"run": "metrics:run_seconds:", "end_to_end": "metrics:end_to_end_seconds:"}


def record_submitted(operation: str, count: int = 1) -> None:
    _write(lambda pipe: pipe.hincrby(SUBMITTED, operation, count))


def record_finished(
    operation: str,
    status: str,
    count: int = 1,
    *,
    run_seconds: float | None = None,
    end_to_end_seconds: float | None = None,
) -> None:
    def write(pipe) -> None:
        pipe.hincrby(FINISHED, f"{operation}|{status}", count)
        for name, seconds in (("run", run_seconds), ("end_to_end", end_to_end_seconds)):
            if seconds is not None:
                key = HISTOGRAMS[name] + operation
                pipe.hincrby(key, str(bisect.bisect_left(BUCKETS, seconds)), 1)
                pipe.hincrbyfloat(key, "sum", seconds)

    _write(write)


def _write(commands) -> None:
    try:
        pipe = durable().pipeline(transaction=False)
        commands(pipe)
        pipe.execute()
    except RedisError:
        logger.debug("metrics not recorded: Redis unreachable")
