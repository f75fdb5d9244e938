"""The work sent to the workers: submissions, end to end, a batch, worker throughput, and memory after it all."""

from __future__ import annotations

import re
import signal
import time
import uuid
from datetime import UTC, datetime

from .figures import REDIS_BROKER, REDIS_RESULTS, Measurements, Row, group_pids, percentile_of, rss_mb, wrk

SUBMIT_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Cookie"] = "csrftoken=TOKEN"
wrk.headers["X-CSRFToken"] = "TOKEN"
wrk.headers["HX-Request"] = "true"
math.randomseed(os.time() + math.floor(os.clock() * 1000000))
local function hex(n) return string.format("%0" .. n .. "x", math.random(0, 16 ^ n - 1)) end
request = function()
  local key = hex(4) .. hex(4) .. "-" .. hex(4) .. "-4" .. hex(3) .. "-8" .. hex(3) .. "-" .. hex(6) .. hex(6)
  return wrk.format(nil, nil, nil, "operation=add&x=1&y=2&work_seconds=0&idempotency_key=" .. key)
end
"""


API_SUBMIT_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer TOKEN"
wrk.body = '{"operation": "add", "inputs": {"x": 1, "y": 2}}'
"""
FLOWER_APPLY_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Basic CREDENTIALS"
wrk.body = '{"args": [0], "queue": "FLOWER_QUEUE"}'
"""
# Flower's messages go to a queue no worker takes, emptied after: publishing there costs Flower what publishing to
# the workers' would, and no later measurement waits behind ten thousand tasks that do nothing.
FLOWER_QUEUE = "bench-flower"


class QueueMeasurements(Measurements):
    def batch(self, size: int = 1000) -> None:
        """A batch of `size` additions through the form, as a person submits it: the POST's time, then the time
        until all have ended (one worker process)."""
        import requests

        from tasks.models import Batch

        session = requests.Session()
        session.get(f"{self.url}/batches/new/", timeout=10)
        data = {"operation": "add", "varied": "x", "start": "1", "stop": str(size), "step": "1", "y": "1"}
        data["csrfmiddlewaretoken"] = session.cookies["csrftoken"]
        started = time.monotonic()
        response = session.post(f"{self.url}/batches/", data=data, headers={"HX-Request": "true"}, timeout=60)
        submitted = time.monotonic() - started
        batch = Batch.objects.get(pk=int(response.headers["HX-Redirect"].rstrip("/").rsplit("/", 1)[1]))
        while batch.computations.in_flight().exists():
            time.sleep(0.05)
        finished = time.monotonic() - started
        self.rows += [
            Row(
                f"a batch of {size:,}: the POST that writes and sends it",
                submitted * 1000,
                None,
                "ms",
                "well under 1 s",
                submitted < 0.5,
            ),
            Row(
                f"a batch of {size:,}: until all have ended (one worker process)",
                finished,
                None,
                "s",
                "reported",
                None,
                f"{size / finished:.0f} computations per second",
            ),
        ]

    def submissions(self) -> None:
        import requests

        session = requests.Session()
        session.get(f"{self.url}/", timeout=10)
        token = session.cookies["csrftoken"]
        script = SUBMIT_SCRIPT.replace("TOKEN", token)
        hello = wrk(f"{self.url}/healthz", connections=16)
        self.stack.signal_workers(signal.SIGSTOP)  # the web's work only: insert and enqueue
        try:
            posts = wrk(f"{self.url}/computations/", connections=16, script=script)
        finally:
            self.stack.signal_workers(signal.SIGCONT)
        self.rows.append(
            Row(
                "submissions per second at 16 clients (vs hello)",
                posts["rps"],
                hello["rps"],
                "req/s",
                "≥ 0.4×",
                posts["rps"] >= 0.4 * hello["rps"],
                f"{posts['errors']} non-2xx answers",
            )
        )
        self.wait_for_queue_to_drain()

    def api(self, clients: int = 16, size: int = 1000) -> None:
        """Submissions through /api/v1/ with a token, against Flower's async-apply of the same task in the same
        run, both through HAProxy with the workers stopped (the web's work only: ours writes a row durably and the
        audit trail's entry, Flower writes nothing); then a batch of `size` through the API."""
        import base64

        import redis
        import requests

        token = self.api_token()
        credentials = base64.b64encode(
            f"{self.stack.environment['FLOWER_USER']}:{self.stack.environment['FLOWER_PASSWORD']}".encode()
        ).decode()
        self.stack.signal_workers(signal.SIGSTOP)
        try:
            ours = wrk(
                f"{self.url}/api/v1/computations",
                connections=clients,
                script=API_SUBMIT_SCRIPT.replace("TOKEN", token),
            )
            flower = wrk(
                f"{self.url}/flower/api/task/async-apply/tasks.run_computation",
                connections=clients,
                script=FLOWER_APPLY_SCRIPT.replace("CREDENTIALS", credentials).replace("FLOWER_QUEUE", FLOWER_QUEUE),
            )
        finally:
            self.stack.signal_workers(signal.SIGCONT)
            redis.Redis.from_url(REDIS_BROKER).delete(FLOWER_QUEUE)
        self.rows.append(
            Row(
                f"API submissions per second at {clients} clients (vs Flower's async-apply of the same task)",
                ours["rps"],
                flower["rps"],
                "req/s",
                "≥ 1×",
                ours["rps"] >= flower["rps"],
                f"p99 {ours['p99']:.0f} ms against {flower['p99']:.0f} ms; "
                f"{ours['errors']} and {flower['errors']} non-2xx answers",
            )
        )
        self.wait_for_queue_to_drain()
        body = {"operation": "add", "vary": "x", "start": 1, "stop": size, "step": 1, "inputs": {"y": 1}}
        started = time.monotonic()
        made = requests.post(
            f"{self.url}/api/v1/batches", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        took = (time.monotonic() - started) * 1000
        assert made.status_code == 201, made.text
        self.rows.append(
            Row(f"a batch of {size:,} through the API: its POST", took, None, "ms", "≤ 300 ms", took <= 300)
        )
        self.wait_for_queue_to_drain()

    def api_token(self) -> str:
        """A token of a person made for the bench, in the stack's database (which this process shares)."""
        from django.contrib.auth import get_user_model

        from tasks.models import ApiToken

        person, _ = get_user_model().objects.get_or_create(username="bench")
        return ApiToken.objects.issue(person, "bench")[1]

    def wait_for_queue_to_drain(self, timeout: float = 600) -> None:
        from tasks.models import Computation

        deadline = time.monotonic() + timeout
        while Computation.objects.in_flight().exists():
            if time.monotonic() > deadline:
                raise TimeoutError("the submissions did not drain")
            time.sleep(0.5)

    def end_to_end(self, count: int = 150) -> None:
        latencies = self.submission_round_trips(count)
        raw = self.celery_round_trips(count)
        for name, percentile in (("p50", 50), ("p99", 99)):
            ours, base = percentile_of(latencies, percentile), percentile_of(raw, percentile)
            self.rows.append(
                Row(
                    f"end to end, POST to result, {name} (vs raw Celery round trip)",
                    ours,
                    base,
                    "ms",
                    "≤ 2×",
                    ours <= 2 * base,
                )
            )

    def beside_heavy_work(self, count: int = 50) -> None:
        """An addition's time from POST to result while every heavy process is busy and more heavy work waits,
        against an idle system's: the two queues keep quick work from waiting behind slow."""
        import requests

        from tasks.models import Computation

        idle = percentile_of(self.submission_round_trips(count), 50)
        session = requests.Session()
        session.get(f"{self.url}/", timeout=10)
        token = session.cookies["csrftoken"]
        heavy = []
        for _ in range(12):  # every heavy process busy (the bench's worker has one), the rest waiting
            response = session.post(
                f"{self.url}/computations/",
                data={"operation": "count_primes", "n": "1000", "work_seconds": "60"},
                headers={"HX-Request": "true", "X-CSRFToken": token},
                timeout=10,
            )
            heavy.append(int(re.search(r'href="/computations/(\d+)/"', response.text).group(1)))
        while not Computation.objects.filter(pk__in=heavy, status="running").exists():
            time.sleep(0.1)
        busy = percentile_of(self.submission_round_trips(count), 50)
        running = Computation.objects.filter(pk__in=heavy, status="running").count()
        waiting = Computation.objects.filter(pk__in=heavy, status="queued").count()
        cancel = {"do": "cancel-matching", "operation": "count_primes", "confirm": "on"}
        session.post(f"{self.url}/computations/bulk/", data=cancel, headers={"X-CSRFToken": token}, timeout=30)
        self.rows.append(
            Row(
                "an addition's POST to result, p50, with the heavy queue full (vs an idle system)",
                busy,
                idle,
                "ms",
                "≤ 2×",
                busy <= 2 * idle,
                f"{running} heavy running, {waiting} waiting",
            )
        )

    def submission_round_trips(self, count: int) -> list[float]:
        """Milliseconds from each POST of a computation until the database has it finished."""
        import requests
        from django.db import connection

        session = requests.Session()
        session.get(f"{self.url}/", timeout=10)
        token = session.cookies["csrftoken"]
        latencies = []
        for _ in range(count):
            started = datetime.now(UTC)
            response = session.post(
                f"{self.url}/computations/",
                data={"operation": "add", "x": "1", "y": "2", "idempotency_key": str(uuid.uuid4())},
                headers={"HX-Request": "true", "X-CSRFToken": token},
                timeout=10,
            )
            pk = int(re.search(r'href="/computations/(\d+)/"', response.text).group(1))
            with connection.cursor() as cursor:
                while True:
                    cursor.execute("SELECT finished_at FROM tasks_computation WHERE id = %s", [pk])
                    (finished,) = cursor.fetchone()
                    if finished:
                        break
                    time.sleep(0.001)
            latencies.append((finished.replace(tzinfo=UTC) - started).total_seconds() * 1000)
        return latencies

    def celery_round_trips(self, count: int) -> list[float]:
        """Milliseconds of each apply_async().get() of a no-op task on the baseline worker."""
        from tools.bench_app import noop

        raw = []
        for _ in range(count):
            started = time.perf_counter()
            noop.apply_async().get(timeout=10)
            raw.append((time.perf_counter() - started) * 1000)
        return raw

    def worker_throughput(self, count: int = 2000) -> None:
        ours = self.computations_per_second(count)
        raw = self.noop_tasks_per_second(count)
        self.rows.append(
            Row(
                "computations per second, one worker process (vs no-op Celery tasks)",
                ours,
                raw,
                "tasks/s",
                "≥ 0.5×",
                ours >= 0.5 * raw,
            )
        )

    def computations_per_second(self, count: int) -> float:
        """`count` additions queued while the worker is stopped, then drained by it."""
        from django.utils import timezone

        from tasks import sending
        from tasks.models import Computation

        self.stack.signal_workers(signal.SIGSTOP)
        try:
            # As services.submit() leaves them: sent (else the sweep would send each one again).
            now = timezone.now()
            rows = Computation.objects.bulk_create(
                [Computation(operation="add", inputs={"x": "1", "y": "2"}, enqueued_at=now) for _ in range(count)]
            )
            for computation in rows:
                sending.enqueue(computation)
        finally:
            started = time.monotonic()
            self.stack.signal_workers(signal.SIGCONT)
        while Computation.objects.in_flight().exists():
            time.sleep(0.05)
        return count / (time.monotonic() - started)

    def noop_tasks_per_second(self, count: int) -> float:
        """`count` no-op tasks queued while the baseline worker is stopped, then drained by it."""
        import redis

        from tools.bench_app import DONE_KEY, noop_counted

        counter = redis.Redis.from_url(REDIS_RESULTS)
        counter.set(DONE_KEY, 0)
        self.stack.signal("baseline", signal.SIGSTOP)
        try:
            for _ in range(count):
                noop_counted.delay()
        finally:
            started = time.monotonic()
            self.stack.signal("baseline", signal.SIGCONT)
        while int(counter.get(DONE_KEY) or 0) < count:
            time.sleep(0.05)
        return count / (time.monotonic() - started)

    def memory(self, flower_tasks: int) -> None:
        import redis

        from tools.bench_app import DONE_KEY, noop_counted

        web_rss = max(rss_mb(pid) for pid in self.children("web1"))  # uWSGI's workers, not its master
        # The instant worker: it ran the thousands of additions above.
        worker_rss = rss_mb(self.stack.processes["instant"].pid)
        pool_rss = max((rss_mb(pid) for pid in self.children("instant")), default=0)
        flower_pid = max(group_pids(self.stack.processes["flower"].pid))
        flower_before = rss_mb(flower_pid)
        counter = redis.Redis.from_url(REDIS_RESULTS)
        counter.set(DONE_KEY, 0)
        started = time.monotonic()
        for _ in range(flower_tasks):
            noop_counted.delay()
        while int(counter.get(DONE_KEY) or 0) < flower_tasks:
            time.sleep(0.5)
        time.sleep(3)  # Flower takes the last events in
        flower_after = rss_mb(flower_pid)
        self.rows += [
            Row("RSS of a uWSGI worker after the runs", web_rss, None, "MB", "reported", None),
            Row(
                "RSS of a Celery worker's main process",
                worker_rss,
                None,
                "MB",
                "reported",
                None,
                f"its pool process: {pool_rss:.0f} MB",
            ),
            Row(
                f"RSS of Flower after {flower_tasks:,} tasks (max_tasks 10,000)",
                flower_after,
                flower_before,
                "MB",
                "bounded",
                flower_after < 400,
                f"{flower_tasks / (time.monotonic() - started):.0f} tasks/s through the baseline worker",
            ),
        ]
