"""`make bench`: the dashboard's figures beside the stack's own limits, measured in one run on one stack.

Starts the local stack (tools/stack.py) on free ports with a database of its own, plus a bare Celery
worker for the baselines (tools/bench_app.py), and prints one table: what, our figure, the baseline, the
ratio, the target, met or not. Every figure is a ratio against a baseline taken in the same run, because
absolute times on a shared machine are noise. Latencies and request rates come from wrk; the rest from this
process. The table goes to the terminal and, as JSON, to var/bench/<timestamp>.json.
"""

from __future__ import annotations

import json
import os
import platform
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from .stack import ROOT, START, VENV_BIN, Ports, Stack

OUTPUT = ROOT / "var" / "bench"
DATABASE = "bench_dashboard"
REDIS_BROKER, REDIS_CACHE, REDIS_RESULTS = (
    "redis://127.0.0.1:6379/14",
    "redis://127.0.0.1:6379/15",
    "redis://127.0.0.1:6379/13",
)
WRK_SECONDS = 8
CONCURRENCY = 8


@dataclass
class Row:
    what: str
    ours: float
    baseline: float | None
    unit: str
    target: str
    met: bool | None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return None if not self.baseline else self.ours / self.baseline


def environment() -> dict[str, str]:
    return {
        **os.environ,
        "DEBUG": "false",
        "HTTPS": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": f"mysql://root@127.0.0.1:3306/{DATABASE}",
        "REDIS_URL": REDIS_BROKER,
        "CACHE_URL": REDIS_CACHE,
        "BENCH_RESULT_URL": REDIS_RESULTS,
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "LOG_LEVEL": "WARNING",
        "ADMIN_PASSWORD": "",
        "FLOWER_USER": "flower",
        "FLOWER_PASSWORD": secrets.token_urlsafe(16),
        "STATS_USER": "stats",
        "STATS_PASSWORD": secrets.token_urlsafe(16),
        "SUBMISSION_RATE_LIMIT": "100000000/m",
        "HAPROXY_RATE_LIMIT": "100000000",
        "COMPUTATION_MAX_QUEUED": "100000000",
        "WORKER_CONCURRENCY": "1",
    }


def wrk(url: str, *, connections: int = CONCURRENCY, seconds: int = WRK_SECONDS, headers: dict | None = None,
        script: str | None = None) -> dict[str, float]:  # fmt: skip
    """Requests per second and latency percentiles (ms) from wrk."""
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    for name, value in (headers or {}).items():
        command[1:1] = ["-H", f"{name}: {value}"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        if script:
            lua.write(script)
            lua.flush()
            command[1:1] = ["-s", lua.name]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    units = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    figures = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))}
    for percent, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE):
        figures[f"p{percent}"] = float(value) * units[unit]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    figures["errors"] = int(non_2xx.group(1)) if non_2xx else 0
    return figures


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


def group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid:
                    pids.append(int(entry.name))
            except ProcessLookupError:
                continue
    return sorted(pids)


class Bench:
    def __init__(self, stack: Stack):
        self.stack = stack
        self.rows: list[Row] = []
        self.url = stack.url

    # Database fixtures, made in bulk with SQL: a million rows in a few tens of seconds.

    def grow_table(self, rows: int) -> float:
        from django.db import connection

        started = time.monotonic()
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM tasks_computation")
            (current,) = cursor.fetchone()
            if current == 0:
                cursor.execute(
                    "INSERT INTO tasks_computation (operation, inputs, work_seconds, status, progress, result, error,"
                    " attempts, max_attempts, worker, task_id, created_at, started_at, finished_at, updated_at,"
                    " in_main_list) VALUES ('add', '{\"x\": \"1\", \"y\": \"2\"}', 0, 'succeeded', 100, '3', '', 1, 3,"
                    " 'bench', REPLACE(UUID(), '-', ''), UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), UTC_TIMESTAMP(6),"
                    " UTC_TIMESTAMP(6), TRUE)"
                )
                current = 1
            while current < rows:
                batch = min(current, rows - current, 200_000)
                # Doubling the table: every operation, nine in ten succeeded, the rest failed or cancelled.
                cursor.execute(
                    "INSERT INTO tasks_computation (operation, inputs, work_seconds, status, progress, result, error,"
                    " attempts, max_attempts, worker, task_id, created_at, started_at, finished_at, updated_at,"
                    " in_main_list) SELECT ELT(1 + FLOOR(RAND() * 7), 'add', 'subtract', 'multiply', 'divide',"
                    " 'count_primes', 'estimate_pi', 'factorize'), inputs, 0,"
                    " CASE WHEN RAND() < 0.9 THEN 'succeeded' WHEN RAND() < 0.5 THEN 'failed' ELSE 'cancelled' END,"
                    " 100, result, '', 1, 3, 'bench', REPLACE(UUID(), '-', ''), created_at, started_at, finished_at,"
                    " updated_at, TRUE FROM tasks_computation LIMIT %s",
                    [batch],
                )
                current += batch
        return time.monotonic() - started

    def queries_per_page(self, path: str) -> int:
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext

        client = Client()
        client.get(path, HTTP_HX_REQUEST="true")  # warm the connection
        # A parameter of its own misses the rendered-partial cache: these are the queries of a render.
        miss = f"{path}{'&' if '?' in path else '?'}miss={uuid.uuid4()}"
        with CaptureQueriesContext(connection) as captured:
            response = client.get(miss, HTTP_HX_REQUEST="true")
        assert response.status_code in (200, 286), response.status_code
        return len(captured)

    def children(self, name: str) -> list[int]:
        """The processes a stack process started (its process group, without itself)."""
        leader = self.stack.processes[name].pid
        return [pid for pid in group_pids(leader) if pid != leader]

    # The measurements, in the order.

    def idle_poll(self, hello: dict) -> None:
        import requests

        first = requests.get(f"{self.url}/computations/", headers={"HX-Request": "true"}, timeout=10)
        headers = {"HX-Request": "true", "If-None-Match": first.headers["ETag"]}
        check = requests.get(f"{self.url}/computations/", headers=headers, timeout=10)
        assert check.status_code == 304, check.status_code
        poll = wrk(f"{self.url}/computations/", headers=headers)
        sql = self.queries_304(headers)
        for percentile in ("p50", "p99"):
            self.rows.append(Row(
                f"idle poll 304, {percentile} (vs hello)", poll[percentile], hello[percentile], "ms", "≤ 1.5×",
                poll[percentile] <= 1.5 * hello[percentile], f"{sql} SQL queries per 304",
            ))  # fmt: skip

    def queries_304(self, headers: dict) -> int:
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext

        client = Client()
        etag = client.get("/computations/", HTTP_HX_REQUEST="true")["ETag"]
        with CaptureQueriesContext(connection) as captured:
            response = client.get("/computations/", HTTP_HX_REQUEST="true", HTTP_IF_NONE_MATCH=etag)
        assert response.status_code == 304
        return len(captured)

    def list_at_scale(self, hello: dict) -> None:
        """The list's first page and a filtered page, as served (rendered once per change, then from the cache for
        every poller) and as rendered (each request a miss, as for the first poller after a change)."""
        pages = {"first page": "/computations/", "filtered page": "/computations/?status=failed&operation=divide"}
        measured: dict[tuple[str, str, int], dict] = {}
        for size in (10_000, 1_000_000):
            seconds = self.grow_table(size)
            print(f"  table grown to {size:,} rows in {seconds:.0f} s", flush=True)
            for name, path in pages.items():
                queries = self.queries_per_page(path)
                served = wrk(f"{self.url}{path}", headers={"HX-Request": "true"})
                rendered = wrk(f"{self.url}{path}", headers={"HX-Request": "true"}, script=CACHE_MISS_SCRIPT)
                measured[(name, "served", size)] = {**served, "queries": queries}
                measured[(name, "rendered", size)] = {**rendered, "queries": queries}
        for name in pages:
            for how in ("served", "rendered"):
                small, large = measured[(name, how, 10_000)], measured[(name, how, 1_000_000)]
                self.rows.append(Row(
                    f"list {name} {how} at 1M rows, p50 (vs hello)", large["p50"], hello["p50"], "ms", "≤ 3×",
                    large["p50"] <= 3 * hello["p50"],
                    f"{large['queries']} SQL queries per render; at 10k rows {small['p50']:.2f} ms",
                ))  # fmt: skip
                # The number of queries depends on what the page shows (a batch's row adds two), not on the
                # table's size: it is reported, and the time alone decides.
                self.rows.append(Row(
                    f"list {name} {how}: p50 at 1M rows vs at 10k", large["p50"], small["p50"], "ms",
                    "flat (≤ 1.5×)", large["p50"] <= 1.5 * small["p50"],
                    f"SQL queries per render: {small['queries']} at 10k rows, {large['queries']} at 1M",
                ))  # fmt: skip

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
            Row(f"a batch of {size:,}: the POST that writes and sends it", submitted * 1000, None, "ms",
                "well under 1 s", submitted < 0.5),
            Row(f"a batch of {size:,}: until all have ended (one worker process)", finished, None, "s", "reported",
                None, f"{size / finished:.0f} computations per second"),
        ]  # fmt: skip

    def activity_plan(self) -> None:
        """EXPLAIN of the Activity panel's query at a million rows: a range over the last hour, not a scan."""
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "EXPLAIN SELECT status, COUNT(*) FROM tasks_computation WHERE finished_at >= UTC_TIMESTAMP()"
                " - INTERVAL 1 HOUR AND status IN ('succeeded', 'failed', 'cancelled') GROUP BY status"
            )
            columns = [column[0] for column in cursor.description]
            plan = dict(zip(columns, cursor.fetchone(), strict=True))
        self.rows.append(Row(
            "Activity query at 1M rows: index range, rows examined (estimate)", float(plan["rows"] or 0), None,
            "rows", "no full scan", plan["type"] == "range" and plan["key"] == "computation_finished_status",
            f"type={plan['type']} key={plan['key']}",
        ))  # fmt: skip

    def export(self) -> None:
        """The whole table as CSV through HAProxy: rows per second, and the web workers' memory before and after."""
        import requests

        from tasks.models import Computation

        expected = Computation.objects.count()
        before = {pid: rss_mb(pid) for name in ("web1", "web2") for pid in self.children(name)}
        started, lines = time.monotonic(), 0
        with requests.get(f"{self.url}/computations/export.csv", stream=True, timeout=600) as response:
            for chunk in response.iter_content(chunk_size=1 << 16):
                lines += chunk.count(b"\n")
        seconds = time.monotonic() - started
        after = {pid: rss_mb(pid) for pid in before if Path(f"/proc/{pid}").exists()}
        grown = max((after[pid] - before[pid] for pid in after), default=0)
        rows = lines - 1
        self.rows += [
            Row(f"export of {expected:,} rows as CSV: rows per second", rows / seconds, None, "rows/s", "reported",
                None, f"{rows:,} rows in {seconds:.1f} s{'' if rows == expected else ' (INCOMPLETE)'}"),
            Row("web worker RSS growth during the export", grown, max(before.values()), "MB", "flat", grown < 20,
                f"largest worker {max(after.values(), default=0):.0f} MB after, {max(before.values()):.0f} MB before"),
        ]  # fmt: skip

    def submissions(self) -> None:
        import requests

        session = requests.Session()
        session.get(f"{self.url}/", timeout=10)
        token = session.cookies["csrftoken"]
        script = SUBMIT_SCRIPT.replace("TOKEN", token)
        hello = wrk(f"{self.url}/healthz", connections=16)
        self.stack.signal("worker", signal.SIGSTOP)  # the web's work only: insert and enqueue
        try:
            posts = wrk(f"{self.url}/computations/", connections=16, script=script)
        finally:
            self.stack.signal("worker", signal.SIGCONT)
        self.rows.append(Row(
            "submissions per second at 16 clients (vs hello)", posts["rps"], hello["rps"], "req/s", "≥ 0.4×",
            posts["rps"] >= 0.4 * hello["rps"], f"{posts['errors']} non-2xx answers",
        ))  # fmt: skip
        self.wait_for_queue_to_drain()

    def wait_for_queue_to_drain(self, timeout: float = 600) -> None:
        from tasks.models import Computation

        deadline = time.monotonic() + timeout
        while Computation.objects.in_flight().exists():
            if time.monotonic() > deadline:
                raise TimeoutError("the submissions did not drain")
            time.sleep(0.5)

    def end_to_end(self, count: int = 150) -> None:
        import requests
        from django.db import connection

        from tools.bench_app import noop

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
        raw = []
        for _ in range(count):
            started = time.perf_counter()
            noop.apply_async().get(timeout=10)
            raw.append((time.perf_counter() - started) * 1000)
        for name, percentile in (("p50", 50), ("p99", 99)):
            ours, base = percentile_of(latencies, percentile), percentile_of(raw, percentile)
            self.rows.append(Row(
                f"end to end, POST to result, {name} (vs raw Celery round trip)", ours, base, "ms", "≤ 2×",
                ours <= 2 * base,
            ))  # fmt: skip

    def worker_throughput(self, count: int = 2000) -> None:
        import redis
        from django.utils import timezone

        from tasks import services
        from tasks.models import Computation
        from tools.bench_app import DONE_KEY, noop_counted

        self.stack.signal("worker", signal.SIGSTOP)
        try:
            # As services.submit() leaves them: sent (else the sweep would send each one again).
            now = timezone.now()
            rows = Computation.objects.bulk_create(
                [Computation(operation="add", inputs={"x": "1", "y": "2"}, enqueued_at=now) for _ in range(count)]
            )
            for computation in rows:
                services.enqueue(computation)
        finally:
            started = time.monotonic()
            self.stack.signal("worker", signal.SIGCONT)
        while Computation.objects.in_flight().exists():
            time.sleep(0.05)
        ours = count / (time.monotonic() - started)

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
        raw = count / (time.monotonic() - started)
        self.rows.append(Row(
            "computations per second, one worker process (vs no-op Celery tasks)", ours, raw, "tasks/s", "≥ 0.5×",
            ours >= 0.5 * raw,
        ))  # fmt: skip

    def memory(self, flower_tasks: int) -> None:
        import redis

        from tools.bench_app import DONE_KEY, noop_counted

        web_rss = max(rss_mb(pid) for pid in self.children("web1"))  # uWSGI's workers, not its master
        worker_rss = rss_mb(self.stack.processes["worker"].pid)
        pool_rss = max((rss_mb(pid) for pid in self.children("worker")), default=0)
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
            Row("RSS of a Celery worker's main process", worker_rss, None, "MB", "reported", None,
                f"its pool process: {pool_rss:.0f} MB"),
            Row(f"RSS of Flower after {flower_tasks:,} tasks (max_tasks 10,000)", flower_after, flower_before, "MB",
                "bounded", flower_after < 400,
                f"{flower_tasks / (time.monotonic() - started):.0f} tasks/s through the baseline worker"),
        ]  # fmt: skip

    def idle_dashboard(self, seconds: int = 20) -> None:
        from playwright.sync_api import sync_playwright

        from tasks import services
        from tasks.operations import REGISTRY

        results = {}
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            for scenario in ("nothing in flight", "work waiting, unchanged"):
                page = browser.new_page()
                if scenario != "nothing in flight":
                    self.stack.signal("worker", signal.SIGSTOP)
                    services.submit(operation=REGISTRY["add"], inputs={"x": 1, "y": 1})
                page.goto(f"{self.url}/")
                page.wait_for_load_state("networkidle")
                sizes: list[int] = []

                def count(request, sizes=sizes) -> None:
                    measured = request.sizes()
                    sizes.append(sum(measured[key] for key in measured))

                page.on("requestfinished", count)
                page.wait_for_timeout(seconds * 1000)
                results[scenario] = (len(sizes), sum(sizes) * 60 / seconds)
                page.close()
                self.stack.signal("worker", signal.SIGCONT)
            browser.close()
        for scenario, (requests_made, per_minute) in results.items():
            self.rows.append(Row(
                f"one open, idle dashboard ({scenario}): bytes per minute", per_minute, None, "B/min", "reported",
                None, f"{requests_made * 60 // seconds} requests per minute",
            ))  # fmt: skip


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


# Each request a new address (an ignored parameter), so none is served from the rendered-partial cache.
CACHE_MISS_SCRIPT = """
math.randomseed(os.time() + math.floor(os.clock() * 1000000))
request = function()
  local separator = string.find(wrk.path, "?", 1, true) and "&" or "?"
  return wrk.format(nil, wrk.path .. separator .. "miss=" .. math.random(1, 2000000000))
end
"""


def percentile_of(values: list[float], percent: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


def print_table(rows: list[Row]) -> None:
    header = f"{'what':<66} {'ours':>10} {'baseline':>10} {'ratio':>7}  {'target':<14} met"
    print("\n" + header + "\n" + "-" * len(header))
    for row in rows:
        baseline = f"{row.baseline:>10.2f}" if row.baseline is not None else f"{'':>10}"
        ratio = f"{row.ratio:>6.2f}×" if row.ratio is not None else f"{'':>7}"
        met = {True: "yes", False: "NO", None: "-"}[row.met]
        print(f"{row.what:<66} {row.ours:>10.2f} {baseline} {ratio}  {row.target:<14} {met}  {row.unit}")
        if row.note:
            print(f"{'':<4}{row.note}")


def main() -> int:
    started = time.monotonic()
    env = environment()
    # This process reads the same database and broker as the stack (fixtures, query counts, baselines), beside
    # Playwright's event loop (which Django would take for async code).
    os.environ.update({**env, "DJANGO_ALLOW_ASYNC_UNSAFE": "true"})
    os.environ["DJANGO_SETTINGS_MODULE"] = "dashboard.settings"
    import django
    import MySQLdb
    import redis

    for url in (REDIS_BROKER, REDIS_CACHE, REDIS_RESULTS):
        redis.Redis.from_url(url).flushdb()
    server = MySQLdb.connect(host="127.0.0.1", port=3306, user="root")
    server.cursor().execute(f"DROP DATABASE IF EXISTS {DATABASE}")
    server.close()
    django.setup()

    log = OUTPUT / "stack.log"
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with log.open("w", buffering=1) as out:
        stack = Stack(env, Ports.free(), output=lambda name, line: out.write(f"{name:>8} | {line}\n"))
        try:
            stack.run_once(str(VENV_BIN / "python"), "manage.py", "ensure_database")
            stack.run_once(str(START / "migrate"))
            stack.start()
            stack.wait_until_ready()
            baseline = subprocess.Popen(
                [str(VENV_BIN / "celery"), "--app", "tools.bench_app", "worker", "--concurrency", "1",
                 "--loglevel", "WARNING", "--hostname", "baseline@%h", "--queues", "bench"],
                cwd=ROOT, env={**stack.environment}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
            stack.processes["baseline"] = baseline
            print(f"stack ready at {stack.url}; measuring (log: {log.relative_to(ROOT)})", flush=True)
            bench = Bench(stack)
            hello = wrk(f"{stack.url}/healthz")
            print("  1. idle poll", flush=True)
            bench.idle_poll(hello)
            # The writes first, on a small table: at a million rows the machine's MariaDB (a 128 MB buffer pool)
            # reads index pages from disk for every write, which measures its configuration, not ours.
            print("  3. submissions", flush=True)
            bench.submissions()
            print("  4. end to end", flush=True)
            bench.end_to_end()
            print("  5. worker throughput", flush=True)
            bench.worker_throughput()
            print("  a batch of 1,000", flush=True)
            bench.batch()
            print("  2. list at scale", flush=True)
            bench.list_at_scale(hello)
            print("  export", flush=True)
            bench.export()
            bench.activity_plan()
            print("  6. memory", flush=True)
            bench.memory(flower_tasks=int(os.environ.get("BENCH_FLOWER_TASKS", "100000")))
            print("  7. an idle dashboard", flush=True)
            bench.idle_dashboard()
        finally:
            stack.stop()
            # A million rows are a few hundred megabytes of the machine's MySQL: not left behind.
            server = MySQLdb.connect(host="127.0.0.1", port=3306, user="root")
            server.cursor().execute(f"DROP DATABASE IF EXISTS {DATABASE}")
            server.close()
    print_table(bench.rows)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%SZ")
    report = {
        "date": stamp,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "system": platform.platform()},
        "hello": hello,
        "rows": [{**asdict(row), "ratio": row.ratio} for row in bench.rows],
        "seconds": round(time.monotonic() - started),
    }
    (OUTPUT / f"{stamp}.json").write_text(json.dumps(report, indent=2))
    print(f"\n{len(bench.rows)} figures in {report['seconds']} s; JSON in var/bench/{stamp}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
