"""Every worker's presence, from the worker itself, and the controls Celery gives over it.

A consumer bootstep (Presence, added in tasks.celery) writes every WORKER_HEARTBEAT_SECONDS one record per worker
into a hash in the broker's Redis: its name, host, queues, pool size, busy processes, tasks done since it started,
software versions and the time. It marks the record stopped at a warm shutdown. At start and at each heartbeat it
also brings what the worker consumes in line with the paused queues (tasks.queues). The Workers page and /metrics
read the hash: they never wait on a broadcast to the workers. Records whose heartbeat stopped are shown as lost
after WORKER_LOST_AFTER_SECONDS and dropped after WORKER_FORGET_AFTER_SECONDS.

Pool size and warm shutdown are Celery's remote control (pool_grow, pool_shrink, shutdown), sent to one worker
without waiting for its reply; its next heartbeat shows the effect.
"""

import json
import logging
import os
import platform
import socket
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

import celery
import django
import kombu
from celery import bootsteps, current_app
from celery.signals import task_received
from celery.worker import state as worker_state
from django.conf import settings
from redis.exceptions import RedisError

from . import broker, queues
from .redis_clients import durable

logger = logging.getLogger(__name__)

WORKERS_KEY = "dashboard:workers"
# A pool may grow to this many processes per core of its host: an open dashboard's controls cannot fork a host
# to death.
MAX_PROCESSES_PER_CORE = 4
_received: Counter[str] = Counter()  # messages taken from each queue since the last heartbeat (main process)


class State:
    ONLINE, LOST, STOPPED = "online", "lost", "stopped"


@dataclass(frozen=True)
class Worker:
    """One worker as its last heartbeat described it."""

    name: str  # Celery's node name, e.g. heavy@host
    host: str
    pid: int
    queues: tuple[str, ...]  # those it is configured for (WORKER_QUEUES)
    consuming: tuple[str, ...]  # those it takes from now (paused ones left out)
    concurrency: int
    max_concurrency: int
    busy: int
    processed: int  # computations run since it started (not the sweeps and fan-outs)
    started: datetime
    heartbeat: datetime
    stopped: bool
    versions: dict[str, str]

    @classmethod
    def from_record(cls, raw: bytes) -> "Worker":
        data = json.loads(raw)
        return cls(
            **{key: data[key] for key in ("name", "host", "pid", "concurrency", "max_concurrency", "busy")},
            queues=tuple(data["queues"]),
            consuming=tuple(data["consuming"]),
            processed=data["processed"],
            started=datetime.fromtimestamp(data["started"], UTC),
            heartbeat=datetime.fromtimestamp(data["heartbeat"], UTC),
            stopped=data["stopped"],
            versions=data["versions"],
        )

    def state(self, now: float) -> str:
        if self.stopped:
            return State.STOPPED
        silent = now - self.heartbeat.timestamp()
        return State.LOST if silent > settings.WORKER_LOST_AFTER_SECONDS else State.ONLINE

    @property
    def idle(self) -> int:
        return max(self.concurrency - self.busy, 0)


def listing(now: float | None = None) -> list[Worker]:
    """Every worker heard from within WORKER_FORGET_AFTER_SECONDS, by name; older records are dropped here (raises
    RedisError when the broker's Redis is unreachable)."""
    now = now or time.time()
    records = durable().hgetall(WORKERS_KEY)
    workers, forgotten = [], []
    for name, raw in records.items():
        try:
            worker = Worker.from_record(raw)
        except (ValueError, KeyError, TypeError):
            forgotten.append(name)  # a record of another version of this code
            continue
        if now - worker.heartbeat.timestamp() > settings.WORKER_FORGET_AFTER_SECONDS:
            forgotten.append(name)
        else:
            workers.append(worker)
    if forgotten:
        durable().hdel(WORKERS_KEY, *forgotten)
    return sorted(workers, key=lambda worker: worker.name)


def find(name: str) -> Worker | None:
    raw = durable().hget(WORKERS_KEY, name)
    return None if raw is None else Worker.from_record(raw)


def grow(worker: Worker) -> None:
    current_app.control.pool_grow(1, destination=[worker.name])


def shrink(worker: Worker) -> None:
    current_app.control.pool_shrink(1, destination=[worker.name])


def shut_down(worker: Worker) -> None:
    """A warm shutdown: the worker takes nothing more and ends when what it runs has ended."""
    current_app.control.shutdown(destination=[worker.name])


def start_consuming(queue: str) -> None:
    """Tells the workers configured for `queue` to take from it again (those not told catch up at their next
    heartbeat)."""
    names = [worker.name for worker in listing() if queue in worker.queues and not worker.stopped]
    if names:
        current_app.control.add_consumer(queue, destination=names)


def stop_consuming(queue: str) -> None:
    """Tells every worker to take nothing more from `queue`: what they run goes on."""
    current_app.control.cancel_consumer(queue)


@task_received.connect
def _count_received(request: object, **kwargs: object) -> None:
    delivery = getattr(request, "delivery_info", None) or {}
    if queue := delivery.get("routing_key"):
        _received[queue] += 1


class Presence(bootsteps.StartStopStep):
    """The worker's heartbeat record, and its queues kept in line with the paused ones."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, consumer: object, **kwargs: object):
        super().__init__(consumer, **kwargs)
        selected = consumer.app.amqp.queues.consume_from
        self.queues = tuple(sorted(selected))
        self.started = time.time()
        self.timer = None
        self.concurrency = 0
        # Before the Tasks step starts consuming: a queue paused now is never taken from, even for a moment.
        try:
            if paused := [name for name in self.queues if name in queues.paused()]:
                consumer.app.amqp.queues.deselect(paused)
                logger.warning("queues paused, not consumed until resumed: %s", ", ".join(paused))
        except RedisError:
            logger.warning("paused queues unknown (Redis unreachable): consuming all until the next heartbeat")

    def start(self, consumer: object) -> None:
        self.beat(consumer)
        self.timer = consumer.timer.call_repeatedly(settings.WORKER_HEARTBEAT_SECONDS, self.beat, (consumer,))

    def stop(self, consumer: object) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def shutdown(self, consumer: object) -> None:
        self.stop(consumer)
        self.beat(consumer, stopped=True)

    def beat(self, consumer: object, *, stopped: bool = False) -> None:
        try:
            if not stopped:
                self._follow_pauses(consumer)
            received = dict(_received)
            pipe = durable().pipeline(transaction=False)
            pipe.hset(WORKERS_KEY, consumer.hostname, json.dumps(self._record(consumer, stopped)))
            queues.count("out", received, pipe)
            pipe.execute()
            _received.subtract(received)
        except RedisError as error:
            logger.warning("heartbeat not recorded: %s", error)

    def _follow_pauses(self, consumer: object) -> None:
        tasks = consumer.task_consumer
        if tasks is None:  # reconnecting
            return
        paused = queues.paused()
        for name in self.queues:
            if name in paused and tasks.consuming_from(name):
                consumer.cancel_task_queue(name)
            elif name not in paused and not tasks.consuming_from(name):
                consumer.add_task_queue(name)

    def _record(self, consumer: object, stopped: bool) -> dict:
        tasks = consumer.task_consumer
        if not stopped:  # at a shutdown the pool is closed already: its last size stands
            self.concurrency = consumer.pool.num_processes
        return {
            "name": consumer.hostname,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "queues": self.queues,
            "consuming": sorted(q.name for q in tasks.queues) if tasks is not None and not stopped else [],
            "concurrency": self.concurrency,
            "max_concurrency": (os.cpu_count() or 1) * MAX_PROCESSES_PER_CORE,
            "busy": len(worker_state.active_requests),
            "processed": worker_state.total_count.get(broker.RUN_COMPUTATION, 0),
            "started": self.started,
            "heartbeat": time.time(),
            "stopped": stopped,
            "versions": {
                "celery": celery.__version__,
                "kombu": kombu.__version__,
                "django": django.get_version(),
                "python": platform.python_version(),
            },
        }
