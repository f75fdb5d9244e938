"""The queues computations wait in: what they are (QUEUES), which one each computation goes to, which are paused,
and their figures.

QUEUES is the one declaration of the queues: routing, the sweep, the Workers page, the metrics, the JSON API and the
admin read it here; Celery declares them from it (tasks.celery); `make run` starts a worker for each
(tools/stack.py); Compose and the stack file have a worker service for each, which tests/deploy holds against it.
Adding a queue is one entry here and its worker service there.

Routing: a computation goes to the first queue that takes it, and the last takes the rest (an unknown operation
too, whose worker fails it). So an addition (instant: arithmetic without simulated work) never waits behind a
factorisation. Sending asks `for_computation`, the purge and the sweep ask `rows_of`; a retry is sent again the
same way, so it keeps its queue.

A paused queue is a member of a set in the broker's Redis (it must outlive the cache). Pausing tells every worker
at once (Celery's cancel_consumer broadcast); each worker also compares the set with what it consumes when it
starts and at every heartbeat (tasks.presence), so one that starts, restarts or missed the broadcast while a queue is
paused never takes from it.

Figures: the depth is the length of the Redis list kombu keeps per queue; the oldest message's age comes from
the `sent_at` header every message carries (stamped below); messages in and out are counted per minute where they
are sent (sending) and where workers receive them (tasks.presence), in keys that expire.
"""

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from celery.signals import before_task_publish
from django.db.models import Q
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy
from redis.client import Pipeline
from redis.exceptions import RedisError

from .operations import REGISTRY, Operation
from .redis_clients import durable


@dataclass(frozen=True)
class Queue:
    name: str  # the broker's list, and what WORKER_QUEUES names
    label: str | Promise  # as people read it, in the language of the moment
    instant: bool = False  # takes only computations done in an instant (Operation.is_instant)
    operations: tuple[str, ...] = ()  # takes only these operations; none named: any
    concurrency: int | None = None  # processes of a worker that serves it alone; None: WORKER_CONCURRENCY's default

    def takes(self, operation: str, spec: Operation | None, work_seconds: int) -> bool:
        if self.operations and operation not in self.operations:
            return False
        return not self.instant or (spec is not None and spec.is_instant(work_seconds))

    def rows(self) -> Q:
        """What `takes` says, as a condition on computations' rows."""
        condition = Q(operation__in=self.operations) if self.operations else Q()
        if self.instant:
            instant = [name for name, spec in REGISTRY.items() if spec.is_instant(0)]
            condition &= Q(operation__in=instant, work_seconds=0)
        return condition


INSTANT, HEAVY = "instant", "heavy"
QUEUES = (
    # Additions and the like take milliseconds: one process takes hundreds a second.
    Queue(INSTANT, gettext_lazy("Instant"), instant=True, concurrency=1),
    Queue(HEAVY, gettext_lazy("Heavy")),
)
NAMES = tuple(queue.name for queue in QUEUES)
if any(not (queue.operations or queue.instant) for queue in QUEUES[:-1]) or QUEUES[-1].operations or QUEUES[-1].instant:
    raise ValueError("every queue but the last takes some computations (operations, instant); the last the rest")
BY_NAME = {queue.name: queue for queue in QUEUES}
PAUSED_KEY = "dashboard:queues:paused"
# Messages in and out per queue, one hash per minute: {"in:<queue>": n, "out:<queue>": n}.
MINUTE_KEY = "dashboard:queues:minute:"
# The rates are averaged over this many whole minutes; the hashes are kept a little longer.
RATE_MINUTES = 5
MINUTE_KEY_SECONDS = 15 * 60
SENT_AT = "sent_at"


def for_computation(operation: str, work_seconds: int) -> str:
    """The queue a computation's task goes to: the first that takes it, else the last."""
    spec = REGISTRY.get(operation)
    return next((queue.name for queue in QUEUES[:-1] if queue.takes(operation, spec, work_seconds)), QUEUES[-1].name)


def rows_of(queue: str) -> Q:
    """The computations whose tasks go to `queue`, as a condition on their rows: what it takes and no queue before
    it does."""
    condition = Q()
    for each in QUEUES:
        if each.name == queue:
            return condition & each.rows() if each is not QUEUES[-1] else condition
        condition &= ~each.rows()
    raise KeyError(queue)


def label(queue: str) -> str:
    """The queue's name as people read it, in the request's language."""
    return str(BY_NAME[queue].label)


def paused() -> set[str]:
    """The queues paused now (raises RedisError when the broker's Redis is unreachable)."""
    return {name.decode() for name in durable().smembers(PAUSED_KEY)}


def paused_labels() -> list[str]:
    """The paused queues as people read them, for the dashboard's status strip (a pause or resume is a change, so
    the list shows it at its next poll); none when the broker's Redis cannot be reached."""
    try:
        paused_now = paused()
    except RedisError:
        return []
    return [label(name) for name in NAMES if name in paused_now]


def set_paused(queue: str, pause: bool) -> bool:
    """Records the queue as paused or not; whether that changed anything."""
    client = durable()
    return bool(client.sadd(PAUSED_KEY, queue) if pause else client.srem(PAUSED_KEY, queue))


@dataclass(frozen=True)
class QueueFigures:
    name: str
    paused: bool
    depth: int  # messages waiting in the broker (not those workers hold)
    oldest_sent_at: datetime | None  # when the oldest waiting message was sent
    rate_in: float  # messages a minute, over the last RATE_MINUTES whole minutes
    rate_out: float

    def oldest_age(self, now: float | None = None) -> float:
        if self.oldest_sent_at is None:
            return 0.0
        return max((now or time.time()) - self.oldest_sent_at.timestamp(), 0.0)


def figures() -> list[QueueFigures]:
    """Every queue's figures, in one round trip to the broker's Redis (raises RedisError when it is unreachable)."""
    this_minute = int(time.time() // 60)
    minutes = range(this_minute - RATE_MINUTES, this_minute)
    pipe = durable().pipeline(transaction=False)
    pipe.smembers(PAUSED_KEY)
    for name in NAMES:
        pipe.llen(name)
        pipe.lindex(name, -1)  # kombu pushes on the left and takes from the right: the oldest is last
    for minute in minutes:
        pipe.hgetall(f"{MINUTE_KEY}{minute}")
    answers = pipe.execute()
    paused_now = {name.decode() for name in answers[0]}
    counted: dict[str, int] = {}
    for counts in answers[1 + 2 * len(NAMES) :]:
        for key, value in counts.items():
            counted[key.decode()] = counted.get(key.decode(), 0) + int(value)
    result = []
    for index, name in enumerate(NAMES):
        depth, oldest = answers[1 + 2 * index], answers[2 + 2 * index]
        result.append(
            QueueFigures(
                name=name,
                paused=name in paused_now,
                depth=int(depth),
                oldest_sent_at=_sent_at(oldest),
                rate_in=counted.get(f"in:{name}", 0) / RATE_MINUTES,
                rate_out=counted.get(f"out:{name}", 0) / RATE_MINUTES,
            )
        )
    return result


def depths() -> dict[str, int]:
    """Messages waiting in each queue (raises RedisError when the broker's Redis is unreachable)."""
    pipe = durable().pipeline(transaction=False)
    for name in NAMES:
        pipe.llen(name)
    return dict(zip(NAMES, map(int, pipe.execute()), strict=True))


def count(direction: str, counts: Mapping[str, int], pipe: Pipeline) -> None:
    """Adds messages sent ("in") or received ("out") per queue to this minute's counts, on `pipe`."""
    key = f"{MINUTE_KEY}{int(time.time() // 60)}"
    for queue, number in counts.items():
        if number:
            pipe.hincrby(key, f"{direction}:{queue}", number)
    pipe.expire(key, MINUTE_KEY_SECONDS)


def _sent_at(raw: bytes | None) -> datetime | None:
    if raw is None:
        return None
    try:
        sent = json.loads(raw)["headers"][SENT_AT]
        return datetime.fromtimestamp(float(sent), UTC)
    except (ValueError, KeyError, TypeError):
        return None  # a message sent before this header existed, or not ours


@before_task_publish.connect
def _stamp_sent_at(headers: dict, **kwargs: object) -> None:
    """Every message says when it was sent, for the age of a queue's oldest."""
    headers.setdefault(SENT_AT, time.time())
