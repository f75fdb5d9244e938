import os
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests import helpers
from tests.helpers import WORKER_LINE
from tools.backends import create_database
from tools.ports import Ports, free_ports
from tools.servers import MariaDB, Redis
from tools.stack import ROOT, START, WORKER_VARIABLES, Stack

# `make faults` (FAULTS=full) runs the figures the reliability issue asks for; `make test` a short form.
FULL = os.environ.get("FAULTS") == "full"

REPORT = ROOT / "var" / "faults.txt"


@dataclass
class Faults:
    """The local stack on private Redis and MariaDB servers, which the tests stop, kill and restart."""

    stack: Stack
    redis: Redis
    mariadb: MariaDB
    database: str
    worker_lines: list[str] = field(default_factory=list)

    def query(self, sql: str, *params: object) -> list[tuple]:
        with self.mariadb.cursor(self.database) as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())

    def statuses(self, ids: list[int] | None = None) -> Counter:
        where = f"WHERE id IN ({','.join(map(str, ids))})" if ids else ""
        return Counter(dict(self.query(f"SELECT status, COUNT(*) FROM tasks_computation {where} GROUP BY status")))

    def running_now(self, ids: list[int]) -> int:
        """How many of `ids` run right now: running, with a heartbeat of the last second."""
        (count,) = self.query(
            f"SELECT COUNT(*) FROM tasks_computation WHERE id IN ({','.join(map(str, ids))}) AND status = 'running'"
            " AND updated_at > UTC_TIMESTAMP(6) - INTERVAL 1 SECOND"
        )[0]
        return count

    def wait_until_ended(self, ids: list[int], timeout: float) -> float:
        """Seconds until none of `ids` is queued or running; fails after `timeout`."""
        started = time.monotonic()
        while (in_flight := self.statuses(ids)["queued"] + self.statuses(ids)["running"]) > 0:
            assert time.monotonic() - started < timeout, f"{in_flight} still in flight after {timeout} s"
            time.sleep(0.5)
        return time.monotonic() - started

    def runs(self) -> tuple[Counter, Counter]:
        """Per computation id, how many attempts the worker logs say started and ended."""
        started, ended = Counter(), Counter()
        for line in self.worker_lines:
            if match := WORKER_LINE.search(line):
                (started if match.group(2) == "started" else ended)[int(match.group(1))] += 1
        return started, ended

    def restart(self, name: str) -> None:
        self.stack.start(name)


@pytest.fixture(scope="session")
def faults(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Faults]:
    directory = tmp_path_factory.mktemp("faults")
    redis_port, mariadb_port = free_ports(2)
    redis_server = Redis(directory / "redis", redis_port)
    mariadb = MariaDB(directory / "mariadb", mariadb_port)
    redis_server.start()
    mariadb.start()
    environment = {
        **os.environ,
        "DEBUG": "false",
        "HTTPS": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": mariadb.url("dashboard"),
        "REDIS_URL": redis_server.url(0),
        "CACHE_URL": redis_server.url(1),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "INFO",
        "ADMIN_PASSWORD": "",
        "FLOWER_USER": "flower",
        "FLOWER_PASSWORD": secrets.token_urlsafe(16),
        "STATS_USER": "stats",
        "STATS_PASSWORD": secrets.token_urlsafe(16),
        "PROXY_SECRET": secrets.token_urlsafe(32),
        # Faster recovery than the defaults, so the tests take seconds: a dead worker's rows are seen after 6 s.
        "COMPUTATION_STALE_AFTER_SECONDS": "6",
        "COMPUTATION_SWEEP_SECONDS": "2",
        # The load comes from one address, far faster than a person.
        "SUBMISSION_RATE_LIMIT": "1000000/m",
        "HAPROXY_RATE_LIMIT": "1000000",
        "HAPROXY_CONNECTIONS_PER_ADDRESS": "10000",
        "COMPUTATION_MAX_QUEUED": "1000000",
        "WORKER_CONCURRENCY": "2",
    }
    log = (directory / "stack.log").open("a", buffering=1)
    faults = None

    def output(process: str, line: str) -> None:
        log.write(f"{process:>8} | {line}\n")
        if process in WORKER_VARIABLES and faults is not None:
            faults.worker_lines.append(line)

    stack = Stack(environment, Ports.free(), output=output)
    faults = Faults(stack, redis_server, mariadb, "dashboard")
    try:
        create_database(mariadb.url("dashboard"))
        stack.run_once(str(START / "migrate"))
        stack.start()
        print(f"\nfault stack ready in {stack.wait_until_ready():.1f} s (log: {directory / 'stack.log'})")
        yield faults
    finally:
        stack.stop()
        redis_server.kill()
        mariadb.kill()
        log.close()


def report(name: str, **figures: object) -> None:
    """Prints a test's figures and appends them to var/faults.txt."""
    helpers.report(REPORT, f"{'full' if FULL else 'short'} {name}", **figures)
