"""A month of history at a million rows: rolling it up, the Activity panel's cost for each range, and a prune of it
all while submissions go on at a steady rate. Last, as it deletes the table the other measurements use."""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from .figures import Measurements, Row, percentile_of

SUBMISSIONS_PER_SECOND = 10
BASELINE_SECONDS = 20


class RetentionMeasurements(Measurements):
    def history_and_prune(self) -> None:
        from django.conf import settings
        from django.db import connection
        from django.utils import timezone

        from dashboard.computations import activity
        from tasks import jobs, retention, rollups
        from tasks.models import Rollup, RollupMark

        with connection.cursor() as cursor:
            # The table's rows spread evenly over the last 30 days in the order of their ids, as a month of work
            # leaves them (by rank: the ids have gaps where the table grew), each run 20 ms to 1 s.
            cursor.execute("SELECT COUNT(*) FROM tasks_computation")
            (total,) = cursor.fetchone()
            cursor.execute(
                "UPDATE tasks_computation JOIN (SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS n FROM tasks_computation)"
                " AS ranked USING (id) SET finished_at = UTC_TIMESTAMP(6) - INTERVAL ((%s - n) * 2592000 DIV %s)"
                " SECOND WHERE finished_at IS NOT NULL",
                [total, total],
            )
            cursor.execute(
                "UPDATE tasks_computation SET started_at = finished_at - INTERVAL (20000 * (1 + id MOD 50))"
                " MICROSECOND, created_at = finished_at - INTERVAL (20000 * (1 + id MOD 50)) MICROSECOND"
                " WHERE finished_at IS NOT NULL"
            )
            cursor.execute("ANALYZE TABLE tasks_computation")
        with holding(jobs.ROLL_UP_LOCK):
            # Rows moved into the past after the rollups began are history they would never go back for: the
            # rollups start over, as on a deployment's first run over a month of rows.
            Rollup.objects.all().delete()
            RollupMark.objects.all().delete()
            started = time.monotonic()
            rollups.roll_up()
            rolled = time.monotonic() - started
        self.rows.append(
            Row(
                "first roll-up of a month at 1M rows (a week of minutes, the rest in hours, all in days)",
                rolled,
                None,
                "s",
                "—",
                None,
            )
        )
        with holding(jobs.ROLL_UP_LOCK):
            started = time.monotonic()
            rollups.roll_up()
        self.rows.append(
            Row("a roll-up each minute after that", (time.monotonic() - started) * 1000, None, "ms", "—", None)
        )

        for key, span in activity.RANGES.items():
            costs = []
            for _ in range(5):
                began = time.monotonic()
                figures = rollups.finished(timezone.now(), None, span)
                costs.append((time.monotonic() - began) * 1000)
            counted = sum(sum(counts.values()) for _, counts in figures["bars"])
            scan = self.table_scan_ms(span.bars * span.bar)
            self.rows.append(
                Row(
                    f"Activity panel's figures at 1M rows, {key} (vs counting the table)",
                    statistics.median(costs),
                    scan,
                    "ms",
                    "< 100 ms",
                    statistics.median(costs) < 100,
                    f"{counted:,} computations drawn",
                )
            )

        # A prune as it would run once the retention period has passed over all of them.
        steady = SteadySubmissions(self.url)
        steady.run_for(BASELINE_SECONDS)
        before = steady.take()
        steady.start()
        try:
            with holding(jobs.PRUNE_LOCK):
                pruned = retention.prune(
                    timezone.now() + timedelta(days=settings.COMPUTATION_RETENTION_DAYS), seconds=3600
                )
        finally:
            steady.stop()
        during = steady.take()
        p99_before, p99_during = percentile_of(before.latencies, 99), percentile_of(during.latencies, 99)
        self.rows.append(
            Row(
                f"prune of {pruned.computations:,} ended rows: rows per second",
                pruned.rows_per_second or 0,
                None,
                "rows/s",
                "—",
                None,
                f"{pruned.seconds:.0f} s, {retention.BATCH:,} rows a statement; "
                f"{pruned.batches} emptied batches deleted",
            )
        )
        self.rows.append(
            Row(
                f"submission p99 during the prune ({SUBMISSIONS_PER_SECOND}/s; vs before it)",
                p99_during,
                p99_before,
                "ms",
                "≤ 2×, none failed",
                p99_during <= 2 * p99_before and not during.failed + before.failed,
                f"{len(during.latencies)} submitted, {during.failed} failed",
            )
        )

    def table_scan_ms(self, span: timedelta) -> float:
        """What the panel cost before the rollups: counting the table's rows over the range by status."""
        from django.db import connection

        with connection.cursor() as cursor:
            began = time.monotonic()
            cursor.execute(
                "SELECT status, COUNT(*) FROM tasks_computation WHERE finished_at >= UTC_TIMESTAMP(6) - INTERVAL %s"
                " SECOND AND status IN ('succeeded', 'failed', 'cancelled') GROUP BY status",
                [int(span.total_seconds())],
            )
            cursor.fetchall()
            return (time.monotonic() - began) * 1000


@contextmanager
def holding(lock: str) -> Iterator[None]:
    """The stack's beat runs the same jobs: this waits for their lock, so that the two never interleave."""
    from tasks import redis_clients

    while not redis_clients.durable().set(lock, 1, nx=True, ex=3600):
        time.sleep(0.2)
    try:
        yield
    finally:
        redis_clients.durable().delete(lock)


class Taken:
    def __init__(self, latencies: list[float], failed: int):
        self.latencies, self.failed = latencies, failed


class SteadySubmissions:
    """Posts a computation every 1/SUBMISSIONS_PER_SECOND s from a thread of its own, as a person's browser would,
    and keeps each one's latency in milliseconds (and the answers that were not 200)."""

    def __init__(self, url: str):
        import requests

        self.url = url
        self.session = requests.Session()
        self.session.get(f"{url}/", timeout=10)
        self.token = self.session.cookies["csrftoken"]
        self.latencies: list[float] = []
        self.failed = 0
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def run_for(self, seconds: float) -> None:
        self.start()
        time.sleep(seconds)
        self.stop()

    def start(self) -> None:
        self.stopping.clear()
        self.thread = threading.Thread(target=self._submit, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.thread:
            self.thread.join()

    def take(self) -> Taken:
        taken = Taken(self.latencies, self.failed)
        self.latencies, self.failed = [], 0
        return taken

    def _submit(self) -> None:
        interval = 1 / SUBMISSIONS_PER_SECOND
        due = time.monotonic()
        while not self.stopping.is_set():
            began = time.monotonic()
            try:
                answer = self.session.post(
                    f"{self.url}/computations/",
                    data={"operation": "add", "x": "1", "y": "2", "idempotency_key": str(uuid.uuid4())},
                    headers={"HX-Request": "true", "X-CSRFToken": self.token},
                    timeout=30,
                )
                ok = answer.status_code == 200
            except OSError:
                ok = False
            self.latencies.append((time.monotonic() - began) * 1000)
            self.failed += not ok
            due += interval
            self.stopping.wait(max(0.0, due - time.monotonic()))
