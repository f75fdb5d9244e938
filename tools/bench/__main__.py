"""`python -m tools.bench`: sets up the environment, starts the stack, measures, prints the table, writes JSON.
`python -m tools.bench history` measures section 9 alone (a month of history at a million rows), in a few minutes;
`python -m tools.bench browser` the live page in a browser alone (section 8's rows while work runs), in about five;
`python -m tools.bench workflows` the workflows' rows alone."""

from __future__ import annotations

import json
import os
import platform
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from typing import IO

from ..backends import create_database
from ..ports import Ports
from ..stack import ROOT, START, VENV_BIN, Stack
from .browser import BrowserMeasurements
from .figures import DATABASE, OUTPUT, REDIS_BROKER, REDIS_RESULTS, Row, print_table, wrk
from .history import RetentionMeasurements
from .page_speed import PageMeasurements
from .queueing import QueueMeasurements
from .workflows import WorkflowMeasurements


class Bench(PageMeasurements, QueueMeasurements, WorkflowMeasurements, RetentionMeasurements, BrowserMeasurements):
    """All the measurements, on one stack, into one list of rows."""


def environment(ports: Ports) -> dict[str, str]:
    return {
        **os.environ,
        "DEBUG": "false",
        "HTTPS": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": f"mysql://root@127.0.0.1:3306/{DATABASE}",
        "REDIS_URL": REDIS_BROKER,
        # The stack's own cache server (tools.stack gives it this address too): this process submits and marks
        # changes beside the stack, and they must reach the same change counter.
        "CACHE_URL": f"redis://127.0.0.1:{ports.cache}/0",
        "BENCH_RESULT_URL": REDIS_RESULTS,
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "LOG_LEVEL": "WARNING",
        "ADMIN_PASSWORD": "",
        "FLOWER_USER": "flower",
        "FLOWER_PASSWORD": secrets.token_urlsafe(16),
        "STATS_USER": "stats",
        "STATS_PASSWORD": secrets.token_urlsafe(16),
        "SUBMISSION_RATE_LIMIT": "100000000/m",
        "API_TOKEN_RATE_LIMIT": "100000000/m",
        "HAPROXY_RATE_LIMIT": "100000000",
        "HAPROXY_CONNECTIONS_PER_ADDRESS": "10000",
        "COMPUTATION_MAX_QUEUED": "100000000",
        "COMPUTATION_MAX_QUEUED_PER_CLIENT": "100000000",
        "WORKER_CONCURRENCY": "1",
    }


def prepare(env: dict[str, str]) -> None:
    """Empties the benchmark's Redis databases and drops its MySQL database, then sets Django up on them."""
    # This process reads the same database and broker as the stack (fixtures, query counts, baselines), beside
    # Playwright's event loop (which Django would take for async code).
    os.environ.update({**env, "DJANGO_ALLOW_ASYNC_UNSAFE": "true"})
    os.environ["DJANGO_SETTINGS_MODULE"] = "dashboard.settings"
    import django
    import redis

    for url in (REDIS_BROKER, REDIS_RESULTS):  # the cache server starts empty with the stack
        redis.Redis.from_url(url).flushdb()
    drop_database()
    django.setup()


def drop_database() -> None:
    import MySQLdb

    server = MySQLdb.connect(host="127.0.0.1", port=3306, user="root")
    server.cursor().execute(f"DROP DATABASE IF EXISTS {DATABASE}")
    server.close()


@contextmanager
def running_stack(env: dict[str, str], ports: Ports, out: IO[str]) -> Iterator[Stack]:
    """The stack, migrated and ready, with the baseline worker beside it; stopped, and its database dropped, after."""
    stack = Stack(env, ports, output=lambda name, line: out.write(f"{name:>8} | {line}\n"))
    try:
        create_database(env["DATABASE_URL"])
        stack.run_once(str(START / "migrate"))
        stack.start()
        stack.wait_until_ready()
        stack.processes["baseline"] = subprocess.Popen(
            [
                str(VENV_BIN / "celery"),
                "--app",
                "tools.bench_app",
                "worker",
                "--concurrency",
                "1",
                "--loglevel",
                "WARNING",
                "--hostname",
                "baseline@%h",
                "--queues",
                "bench",
            ],
            cwd=ROOT,
            env={**stack.environment},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        yield stack
    finally:
        stack.stop()
        # A million rows are a few hundred megabytes of the machine's MySQL: not left behind.
        drop_database()


def measure(stack: Stack) -> tuple[dict[str, float], list[Row]]:
    """wrk's figures for /healthz (the baseline of the web's), and the rows; numbered as in the issue."""
    bench = Bench(stack)
    hello = wrk(f"{stack.url}/healthz")
    print("  1. idle poll", flush=True)
    bench.idle_poll(hello)
    # The writes first, on a small table: at a million rows the machine's MariaDB (a 128 MB buffer pool)
    # reads index pages from disk for every write, which measures its configuration, not ours.
    print("  3. submissions", flush=True)
    bench.submissions()
    print("  submissions through the API, beside Flower's", flush=True)
    bench.api()
    print("  4. end to end", flush=True)
    bench.end_to_end()
    bench.beside_heavy_work()
    print("  5. worker throughput", flush=True)
    bench.worker_throughput()
    print("  a batch of 1,000", flush=True)
    bench.batch()
    print("  workflows of 100 steps", flush=True)
    bench.workflows()
    print("  2. list at scale", flush=True)
    bench.list_at_scale(hello)
    print("  whole pages", flush=True)
    bench.whole_pages(hello)
    print("  export", flush=True)
    bench.export()
    print("  6. memory", flush=True)
    bench.memory(flower_tasks=int(os.environ.get("BENCH_FLOWER_TASKS", "100000")))
    print("  7. an idle dashboard", flush=True)
    bench.idle_dashboard()
    print("  8. blocking time on load", flush=True)
    bench.blocking_time()
    print("  8. the live page in a browser while work runs: a changed poll, blocking time, Lighthouse", flush=True)
    bench.live_pages()
    print("  9. a month of history: rollups, the Activity panel's ranges, a prune of it all", flush=True)
    bench.history_and_prune()
    return hello, bench.rows


def measure_history(stack: Stack) -> tuple[dict[str, float], list[Row]]:
    bench = Bench(stack)
    hello = wrk(f"{stack.url}/healthz")
    print(f"  table grown to 1,000,000 rows in {bench.grow_table(1_000_000):.0f} s", flush=True)
    print("  9. a month of history: rollups, the Activity panel's ranges, a prune of it all", flush=True)
    bench.history_and_prune()
    return hello, bench.rows


def measure_browser(stack: Stack) -> tuple[dict[str, float], list[Row]]:
    """Section 8's rows while work runs, on a table of a few pages (the list's first page full, as at any size)."""
    bench = Bench(stack)
    hello = wrk(f"{stack.url}/healthz")
    print(f"  table grown to 1,000 rows in {bench.grow_table(1_000):.0f} s", flush=True)
    print("  8. the live page in a browser while work runs: a changed poll, blocking time, Lighthouse", flush=True)
    bench.live_pages()
    return hello, bench.rows


def measure_api(stack: Stack) -> tuple[dict[str, float], list[Row]]:
    """The API's rows: submissions beside Flower's async-apply, and a batch of 1,000."""
    bench = Bench(stack)
    hello = wrk(f"{stack.url}/healthz")
    print("  submissions through the API, beside Flower's", flush=True)
    bench.api()
    return hello, bench.rows


def measure_workflows(stack: Stack) -> tuple[dict[str, float], list[Row]]:
    """The workflows' rows: a 100-step workflow's POST, and the hand-over from a step's end to its successor's start."""
    bench = Bench(stack)
    hello = wrk(f"{stack.url}/healthz")
    print("  workflows of 100 steps", flush=True)
    bench.workflows()
    return hello, bench.rows


SECTIONS = {"history": measure_history, "browser": measure_browser, "api": measure_api, "workflows": measure_workflows}


def write_report(hello: dict[str, float], rows: list[Row], started: float) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%SZ")
    report = {
        "date": stamp,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "system": platform.platform()},
        "hello": hello,
        "rows": [{**asdict(row), "ratio": row.ratio} for row in rows],
        "seconds": round(time.monotonic() - started),
    }
    (OUTPUT / f"{stamp}.json").write_text(json.dumps(report, indent=2))
    print(f"\n{len(rows)} figures in {report['seconds']} s; JSON in var/bench/{stamp}.json")


def main() -> int:
    started = time.monotonic()
    ports = Ports.free()
    env = environment(ports)
    prepare(env)
    log = OUTPUT / "stack.log"
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with log.open("w", buffering=1) as out, running_stack(env, ports, out) as stack:
        print(f"stack ready at {stack.url}; measuring (log: {log.relative_to(ROOT)})", flush=True)
        hello, rows = SECTIONS[sys.argv[1]](stack) if sys.argv[1:] else measure(stack)
    print_table(rows)
    write_report(hello, rows, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
