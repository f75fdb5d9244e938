"""Queues and workers on the local stack's real worker processes (a heavy one of two processes, an instant one),
driven through HAProxy as operators use them."""

import json
import re
import signal
import time

import pytest
import redis
import requests

from tests.helpers import admin_session, wait_for
from tools.stack import Stack

from .test_stack import computation, ended, session_with_csrf, submit

pytestmark = pytest.mark.stack


def records(stack: Stack) -> dict[str, dict]:
    """The workers' heartbeat records, by name."""
    client = redis.Redis.from_url(stack.environment["REDIS_URL"])
    return {name.decode(): json.loads(raw) for name, raw in client.hgetall("dashboard:workers").items()}


def online(stack: Stack, prefix: str) -> dict:
    """The record of the running worker whose name starts with `prefix`, once it has reported."""
    return wait_for(
        lambda: next(
            (
                r
                for name, r in records(stack).items()
                if name.startswith(prefix) and not r["stopped"] and time.time() - r["heartbeat"] < 6
            ),
            None,
        ),
        timeout=60,
        interval=0.5,
    )


def post(stack: Stack, path: str, **data: str) -> requests.Response:
    session, token = session_with_csrf(stack)
    return session.post(f"{stack.url}{path}", data={"csrfmiddlewaretoken": token, **data}, timeout=10)


@pytest.fixture
def operator(stack: Stack) -> requests.Session:
    """The admin, signed in: the Workers page and its controls are for operators."""
    return admin_session(stack.url, stack.environment)[0]


def operate(stack: Stack, operator: requests.Session, path: str) -> requests.Response:
    token = operator.cookies["csrftoken"]
    return operator.post(f"{stack.url}{path}", data={"csrfmiddlewaretoken": token}, timeout=10)


def finished_count(stack: Stack) -> int:
    client = redis.Redis.from_url(stack.environment["REDIS_URL"])
    return int(client.hget("metrics:finished", "add|succeeded") or 0)


def test_an_addition_ends_at_once_while_both_heavy_processes_are_busy(stack: Stack):
    heavy = [submit(stack, operation="factorize", n="360", work_seconds="15") for _ in range(2)]
    assert wait_for(lambda: all(computation(stack, pk)["status"] == "running" for pk in heavy), timeout=20)
    started = time.monotonic()
    pk = submit(stack, operation="add", x="20", y="22")
    data = ended(stack, pk, timeout=10)
    seconds = time.monotonic() - started
    assert data["result"] == "42" and data["worker"].startswith("instant@")
    assert seconds < 2, f"the addition took {seconds:.2f} s"
    assert all(computation(stack, each)["status"] == "running" for each in heavy)
    for each in heavy:
        post(stack, f"/computations/{each}/cancel/")


def test_a_paused_queue_keeps_its_work_from_every_worker_until_resumed_then_runs_it_once(stack: Stack, operator):
    assert operate(stack, operator, "/workers/queues/instant/pause/").status_code == 200  # followed to the Workers page
    try:
        before = finished_count(stack)
        ids = [submit(stack, operation="add", x=str(n), y="1") for n in range(5)]
        time.sleep(3)
        assert {computation(stack, pk)["status"] for pk in ids} == {"queued"}
        assert "Paused: Instant." in requests.get(f"{stack.url}/", timeout=10).text
        # A worker started while the queue is paused does not take from it.
        old_pid = online(stack, "instant@")["pid"]
        stack.stop("instant")
        stack.start("instant")
        fresh = wait_for(lambda: (r := online(stack, "instant@"))["pid"] != old_pid and r, timeout=60)
        assert fresh["queues"] == ["instant"] and fresh["consuming"] == []
        time.sleep(3)
        assert {computation(stack, pk)["status"] for pk in ids} == {"queued"}
    finally:
        resumed = operate(stack, operator, "/workers/queues/instant/resume/")
    assert resumed.status_code == 200
    results = [ended(stack, pk, timeout=20)["result"] for pk in ids]
    assert results == [str(n + 1) for n in range(5)]
    time.sleep(1)
    assert finished_count(stack) - before == 5, "each ran exactly once"
    assert wait_for(lambda: online(stack, "instant@")["consuming"] == ["instant"], timeout=10, interval=0.5)


def test_the_workers_page_shows_both_workers_their_work_and_a_killed_one_as_lost(stack: Stack, operator):
    online(stack, "heavy@"), online(stack, "instant@")
    pk = submit(stack, operation="factorize", n="360", work_seconds="6")
    assert wait_for(lambda: computation(stack, pk)["status"] == "running", timeout=20)
    heavy = online(stack, "heavy@")["name"]

    def shows_the_run() -> str | None:
        page = operator.get(f"{stack.url}/workers/", timeout=10).text
        row = re.search(rf'<tr data-worker="{re.escape(heavy)}" data-state="online">(.*?)</tr>', page, re.S)
        return page if row and f'href="/computations/{pk}/"' in row[1] else None

    page = wait_for(shows_the_run, timeout=15, interval=0.5)
    assert 'data-worker="instant@' in page
    ended(stack, pk)

    # Nothing changes: a poll answers 304.
    poll = {"HX-Request": "true"}
    first = operator.get(f"{stack.url}/workers/", headers=poll, timeout=10)
    assert first.status_code == 200 and first.headers["ETag"]

    def not_modified() -> bool:
        etag = operator.get(f"{stack.url}/workers/", headers=poll, timeout=10).headers["ETag"]
        again = operator.get(f"{stack.url}/workers/", headers={**poll, "If-None-Match": etag}, timeout=10)
        return again.status_code == 304

    assert wait_for(not_modified, timeout=15, interval=0.5)

    stack.kill("worker")
    try:
        killed_at = time.monotonic()

        def lost() -> bool:
            page = operator.get(f"{stack.url}/workers/", timeout=10).text
            return f'data-worker="{heavy}" data-state="lost"' in page

        assert wait_for(lost, timeout=60, interval=1)
        assert time.monotonic() - killed_at < 60
    finally:
        stack.start("worker")
    assert online(stack, "heavy@")


def test_an_operator_grows_and_shrinks_a_pool_and_shuts_a_worker_down_warm(stack: Stack, operator):
    heavy = online(stack, "heavy@")
    name, processes = heavy["name"], heavy["concurrency"]
    assert operate(stack, operator, f"/workers/{name}/grow/").status_code == 200
    assert wait_for(lambda: records(stack)[name]["concurrency"] == processes + 1, timeout=15, interval=0.5)
    assert operate(stack, operator, f"/workers/{name}/shrink/").status_code == 200
    assert wait_for(lambda: records(stack)[name]["concurrency"] == processes, timeout=15, interval=0.5)

    pk = submit(stack, operation="factorize", n="360", work_seconds="3")
    assert wait_for(lambda: computation(stack, pk)["status"] == "running", timeout=20)
    assert operate(stack, operator, f"/workers/{name}/shutdown/").status_code == 200
    try:
        # Warm: the run it had ends, then the worker.
        assert ended(stack, pk)["status"] == "succeeded"
        assert wait_for(lambda: records(stack)[name]["stopped"], timeout=20, interval=0.5)
        assert wait_for(lambda: "worker" in stack.exited(), timeout=20, interval=0.5)
    finally:
        stack.signal("worker", signal.SIGKILL)
        stack.start("worker")
    assert online(stack, "heavy@")
