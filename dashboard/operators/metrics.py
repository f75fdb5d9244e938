"""/metrics in Prometheus' text format, computed when Prometheus scrapes.

Counters and histograms come from Redis, where every process that changes a computation records it (see
tasks.counters): that is multi-process and multi-host safe without prometheus-client's multiprocess files, which
would need a directory shared by all uWSGI and Celery processes of one host, and would still leave each host
with its own figures. The queues' depths and the in-flight counts are read from the broker and the database,
the workers' figures from their heartbeat records (tasks.presence). Web request
latency is measured where it is worth measuring, at the edge: HAProxy's own exporter (/haproxy/metrics).

Not public, at two layers: HAProxy refuses it on the public front (after normalising the path), and the view
answers 404 unless the request came through HAProxy's monitoring listener.
"""

import contextlib
import time
from collections import Counter
from collections.abc import Iterator

from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from dashboard.web import health
from dashboard.web.middleware import through_monitoring_listener
from tasks import counters as recorded
from tasks import jobs, presence, queues, storage_figures
from tasks.models import Computation, Status
from tasks.operations import REGISTRY
from tasks.redis_clients import durable


class ComputationCollector(Collector):
    def collect(self) -> Iterator[object]:
        # What is down gets no figure rather than a wrong one, and the rest is still served: an operator's
        # alerts need this page most when the database or the broker is down.
        up = GaugeMetricFamily(
            "dashboard_dependency_up", "1 when the web replica reaches it, as /readyz checks.", labels=["dependency"]
        )
        for dependency, state in health.check_dependencies().items():
            up.add_metric([dependency], int(state == "ok"))
        yield up
        yield from self._recorded()
        with contextlib.suppress(RedisError):
            yield from self._queues_and_workers()
            if (since := jobs.seconds_since_last_sweep()) is not None:
                yield GaugeMetricFamily(
                    "dashboard_sweep_last_age_seconds",
                    "Seconds since the last sweep that beat sent ended: beat, the broker and a worker all work.",
                    since,
                )
        with contextlib.suppress(DatabaseError):
            yield self._in_flight()
            yield from self._storage()

    def _in_flight(self) -> GaugeMetricFamily:
        in_flight = GaugeMetricFamily(
            "dashboard_computations_in_flight", "Computations queued or running now.", labels=["status"]
        )
        counts = Computation.objects.status_counts()
        for status in (Status.QUEUED, Status.RUNNING):
            in_flight.add_metric([status], counts[status])
        return in_flight

    def _storage(self) -> Iterator[object]:
        figures, now = storage_figures.storage(), time.time()
        rows = GaugeMetricFamily("dashboard_computation_rows", "Computations in MySQL.", labels=["status"])
        for status, count in figures.by_status.items():
            rows.add_metric([status], count)
        yield rows
        sizes = GaugeMetricFamily("dashboard_table_bytes", "Size of a table in MySQL.", labels=["table", "part"])
        for table in figures.tables:
            sizes.add_metric([table.name, "data"], table.data_bytes)
            sizes.add_metric([table.name, "index"], table.index_bytes)
        yield sizes
        if figures.oldest:
            yield GaugeMetricFamily(
                "dashboard_oldest_computation_age_seconds",
                "Age of the oldest computation kept.",
                now - figures.oldest.timestamp(),
            )
        yield GaugeMetricFamily(
            "dashboard_retention_days",
            "Ended computations are deleted this long after they end; 0 keeps them.",
            figures.retention_days,
        )
        if prune := figures.last_prune:
            yield GaugeMetricFamily("dashboard_prune_last_timestamp_seconds", "When the last prune started.", prune.at)
            yield GaugeMetricFamily(
                "dashboard_prune_last_rows", "Computations the last prune deleted.", prune.computations
            )
            yield GaugeMetricFamily(
                "dashboard_prune_last_duration_seconds", "How long the last prune took.", prune.seconds
            )
        first = GaugeMetricFamily(
            "dashboard_rollups_first_timestamp_seconds", "The oldest period the rollups keep.", labels=["resolution"]
        )
        for span in figures.rollups:
            if span.first:
                first.add_metric([span.resolution], span.first.timestamp())
        yield first

    def _queues_and_workers(self) -> Iterator[object]:
        now = time.time()
        figures, listed = queues.figures(), presence.listing(now)
        families = {
            "depth": GaugeMetricFamily("dashboard_queue_depth", "Tasks waiting in the broker.", labels=["queue"]),
            "oldest": GaugeMetricFamily(
                "dashboard_queue_oldest_age_seconds", "Age of the oldest task waiting in the broker.", labels=["queue"]
            ),
            "paused": GaugeMetricFamily("dashboard_queue_paused", "1 while the queue is paused.", labels=["queue"]),
        }
        for each in figures:
            families["depth"].add_metric([each.name], each.depth)
            families["oldest"].add_metric([each.name], each.oldest_age(now))
            families["paused"].add_metric([each.name], int(each.paused))
        yield from families.values()
        online = [worker for worker in listed if worker.state(now) == presence.State.ONLINE]
        yield GaugeMetricFamily("dashboard_workers_online", "Workers whose heartbeat is recent.", len(online))
        # A lost worker (silent, not stopped: its host or process died) is what an operator must hear about; one
        # stopped on purpose (a scale-down, a drain) is not.
        by_state = GaugeMetricFamily(
            "dashboard_workers", "Workers heard from lately, by state: online, lost or stopped.", labels=["state"]
        )
        states = Counter(worker.state(now) for worker in listed)
        for state in (presence.State.ONLINE, presence.State.LOST, presence.State.STOPPED):
            by_state.add_metric([state], states[state])
        yield by_state
        busy = GaugeMetricFamily(
            "dashboard_worker_processes", "Pool processes of the online workers.", labels=["worker", "state"]
        )
        for worker in online:
            busy.add_metric([worker.name, "busy"], worker.busy)
            busy.add_metric([worker.name, "idle"], worker.idle)
        yield busy

    def _recorded(self) -> Iterator[object]:
        try:
            pipe = durable().pipeline(transaction=False)
            pipe.hgetall(recorded.SUBMITTED)
            pipe.hgetall(recorded.FINISHED)
            for name in REGISTRY:
                for prefix in recorded.HISTOGRAMS.values():
                    pipe.hgetall(prefix + name)
            submitted, finished, *histograms = pipe.execute()
        except RedisError:
            return
        counter = CounterMetricFamily(
            "dashboard_computations_submitted", "Computations submitted.", labels=["operation"]
        )
        for operation, count in sorted(submitted.items()):
            counter.add_metric([operation.decode()], int(count))
        yield counter
        counter = CounterMetricFamily(
            "dashboard_computations_finished", "Computations that ended.", labels=["operation", "status"]
        )
        for key, count in sorted(finished.items()):
            counter.add_metric(key.decode().split("|", 1), int(count))
        yield counter
        families = {
            name: HistogramMetricFamily(f"dashboard_computation_{name}_seconds", description, labels=["operation"])
            for name, description in (
                ("run", "Run time of computations that ended, from start to end."),
                ("end_to_end", "Time from submission to the end."),
            )
        }
        values = iter(histograms)
        for operation in REGISTRY:
            for name in recorded.HISTOGRAMS:
                data = next(values)
                if data:
                    families[name].add_metric([operation], *_histogram(data))
        yield from families.values()


def _histogram(data: dict[bytes, bytes]) -> tuple[list[tuple[str, float]], float]:
    """Cumulative buckets and the sum, from the per-bucket counts tasks.counters keeps."""
    counts = {int(key): int(value) for key, value in data.items() if key != b"sum"}
    buckets, total = [], 0
    for index, bound in enumerate(recorded.BUCKETS):
        total += counts.get(index, 0)
        buckets.append((str(bound), total))
    buckets.append(("+Inf", total + counts.get(len(recorded.BUCKETS), 0)))
    return buckets, float(data.get(b"sum", 0))


# Our own registry: the default one's process figures would describe whichever uWSGI worker answered.
registry = CollectorRegistry(auto_describe=False)
registry.register(ComputationCollector())


@login_not_required
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    if not through_monitoring_listener(request):
        raise Http404
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
