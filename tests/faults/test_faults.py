"""Nothing lost, nothing run twice: the stack's real processes, broken on purpose.

Each test prints its figures (and appends them to var/faults.txt). `make test` runs a short form; `make faults`
runs the full one (FAULTS=full).
"""

import random
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.helpers import DashboardClient, api_token, wait_for

from .conftest import FULL, Faults, report

pytestmark = pytest.mark.faults

GAVE_UP = "Gave up: the worker running this computation stopped on each attempt."


def submit_many(faults: Faults, count: int, clients: int, **data: str) -> tuple[list[int], Counter]:
    """`count` submissions of `data` through HAProxy from `clients` browsers at once; the accepted ids."""
    statuses: Counter = Counter()
    per_client = [count // clients + (1 if i < count % clients else 0) for i in range(clients)]

    def client(share: int) -> list[int]:
        browser, ids = DashboardClient(faults.stack.url), []
        for _ in range(share):
            response = browser.submit(**data)
            statuses[response.status_code] += 1
            if (pk := browser.submitted_id(response)) is not None:
                ids.append(pk)
        return ids

    with ThreadPoolExecutor(clients) as pool:
        ids = [pk for part in pool.map(client, per_client) for pk in part]
    return ids, statuses


def test_load_every_accepted_submission_ends_once(faults: Faults):
    count = 10_000 if FULL else 1_000
    started = time.monotonic()
    ids, statuses = submit_many(faults, count, clients=16, operation="add", x="2", y="3")
    submitting = time.monotonic() - started
    draining = faults.wait_until_ended(ids, timeout=900 if FULL else 180)
    rows = faults.query(
        f"SELECT status, attempts, result FROM tasks_computation WHERE id IN ({','.join(map(str, ids))})"
    )
    starts, ends = faults.runs()
    duplicated = sum(1 for pk in ids if starts[pk] > 1) + sum(1 for _, attempts, _ in rows if attempts > 1)
    succeeded = sum(1 for status, _, result in rows if status == "succeeded" and result == "5")
    report(
        "load",
        submitted=count,
        accepted=len(ids),
        refused=sum(n for code, n in statuses.items() if code != 200),
        succeeded=succeeded,
        failed=sum(1 for status, _, _ in rows if status == "failed"),
        lost=len(ids) - len(rows),
        duplicated=duplicated,
        submissions_per_second=round(count / submitting),
        seconds_to_drain=round(draining, 1),
    )
    assert len(ids) == count and statuses == Counter({200: count})
    assert len(rows) == len(ids) and succeeded == len(ids)
    assert duplicated == 0
    assert all(starts[pk] == 1 and ends[pk] == 1 for pk in ids)


def test_killing_the_worker_again_and_again_loses_nothing_and_records_nothing_twice(faults: Faults):
    count, kills = (500, 20) if FULL else (40, 3)
    ids, _ = submit_many(faults, count, clients=4, operation="add", x="1", y="1", work_seconds="1")
    started = time.monotonic()
    rng = random.Random(7)
    for _ in range(kills):
        # At a random moment while the worker runs something: a row whose heartbeat is fresh (a killed run's row
        # stays "running" until the sweep sends it again, and a fresh worker takes seconds to start).
        wait_for(lambda: faults.running_now(ids), timeout=60)
        time.sleep(rng.uniform(0, 1))
        faults.stack.kill("worker")
        faults.restart("worker")
    recovery = faults.wait_until_ended(ids, timeout=900 if FULL else 240)
    rows = faults.query(
        f"SELECT id, status, attempts, result, error FROM tasks_computation WHERE id IN ({','.join(map(str, ids))})"
    )
    _, ends = faults.runs()
    statuses = Counter(status for _, status, _, _, _ in rows)
    report(
        "worker killed",
        computations=count,
        kills=kills,
        succeeded=statuses["succeeded"],
        failed_after_retry_budget=statuses["failed"],
        lost=count - len(rows) + statuses["queued"] + statuses["running"],
        rerun_after_a_kill=sum(1 for _, _, attempts, _, _ in rows if attempts > 1),
        recorded_twice=sum(1 for pk in ids if ends[pk] > 1),
        seconds=round(time.monotonic() - started, 1),
        seconds_to_recover_after_last_kill=round(recovery, 1),
    )
    assert len(rows) == count and statuses["queued"] == statuses["running"] == 0
    for _, status, _, result, error in rows:
        assert (status, result) == ("succeeded", "2") or (status, error) == ("failed", GAVE_UP)
    assert all(ends[pk] <= 1 for pk in ids), "an outcome was recorded twice"
    assert statuses["succeeded"] >= count - kills, "only a row killed on each of its attempts may fail"


def test_a_broker_outage_keeps_every_submission_and_sends_it_when_redis_is_back(faults: Faults):
    browser = DashboardClient(faults.stack.url)
    faults.redis.stop()
    stopped = time.monotonic()
    try:
        during, readiness, page = [], None, None
        while time.monotonic() - stopped < 10:
            response = browser.submit(operation="multiply", x="6", y="7")
            during.append(browser.submitted_id(response))
            readiness = requests.get(f"{faults.stack.url}/readyz", timeout=10)
            page = requests.get(f"{faults.stack.url}/", timeout=10)
    finally:
        faults.redis.start()
    back = time.monotonic()
    accepted = [pk for pk in during if pk is not None]
    recovery = faults.wait_until_ended(accepted, timeout=120)
    rows = faults.query(f"SELECT status, result FROM tasks_computation WHERE id IN ({','.join(map(str, accepted))})")
    report(
        "broker outage",
        outage_seconds=round(back - stopped, 1),
        submitted=len(during),
        accepted=len(accepted),
        succeeded=sum(1 for status, result in rows if (status, result) == ("succeeded", "42")),
        lost=len(accepted) - len(rows),
        seconds_to_recover=round(recovery, 1),
        processes_exited=faults.stack.exited(),
    )
    assert accepted and len(accepted) == len(during), "every submission is accepted while the broker is down"
    assert readiness.status_code == 503 and readiness.json()["broker"].startswith("unreachable")
    assert page.status_code == 200 and "The task queue cannot be reached" in page.text
    assert all((status, result) == ("succeeded", "42") for status, result in rows) and len(rows) == len(accepted)
    assert faults.stack.exited() == {}, "no process crashed for good"
    wait_for(lambda: requests.get(f"{faults.stack.url}/readyz", timeout=10).status_code == 200, timeout=30)


def test_a_database_outage_answers_503_and_recovers_without_restarts(faults: Faults):
    browser = DashboardClient(faults.stack.url)
    running = browser.submitted_id(browser.submit(operation="add", x="1", y="2", work_seconds="14"))
    wait_for(lambda: faults.statuses([running])["running"] == 1, timeout=20)
    faults.mariadb.stop()
    stopped = time.monotonic()
    try:
        page = requests.get(f"{faults.stack.url}/", timeout=15)
        poll = requests.get(f"{faults.stack.url}/computations/", headers={"HX-Request": "true"}, timeout=15)
        readiness = requests.get(f"{faults.stack.url}/readyz", timeout=15)
        health = requests.get(f"{faults.stack.url}/healthz", timeout=15)
        refused = browser.submit(operation="add", x="1", y="1")
        time.sleep(max(0.0, 10 - (time.monotonic() - stopped)))
    finally:
        faults.mariadb.start()
    back = time.monotonic()
    recovered = wait_for(lambda: requests.get(f"{faults.stack.url}/", timeout=15).status_code == 200, timeout=30)
    first_page = time.monotonic() - back
    faults.wait_until_ended([running], timeout=60)
    after = browser.submitted_id(browser.submit(operation="add", x="2", y="2"))
    faults.wait_until_ended([after], timeout=30)
    outcome = faults.query("SELECT id, status, result FROM tasks_computation WHERE id IN (%s, %s)", running, after)
    report(
        "database outage",
        outage_seconds=round(back - stopped, 1),
        page_during=page.status_code,
        poll_during=poll.status_code,
        readyz_during=readiness.status_code,
        healthz_during=health.status_code,
        submit_during=refused.status_code,
        seconds_to_first_page=round(first_page, 1),
        computation_running_through_it=dict((pk, status) for pk, status, _ in outcome).get(running),
        processes_exited=faults.stack.exited(),
    )
    assert page.status_code == 503 and "The database cannot be reached right now" in page.text
    assert "Traceback" not in page.text and page.headers["Retry-After"] == "10"
    assert poll.status_code == 503 and poll.headers["HX-Retarget"] == "#outage"
    assert readiness.status_code == 503 and readiness.json()["database"].startswith("unreachable")
    assert health.status_code == 200, "replicas stay in HAProxy's rotation"
    assert refused.status_code == 503
    assert recovered
    assert sorted(outcome) == [(running, "succeeded", "3"), (after, "succeeded", "4")]
    assert faults.stack.exited() == {}


def test_losing_a_replica_under_load_fails_no_get_and_applies_no_post_twice(faults: Faults):
    stop = threading.Event()
    gets: Counter = Counter()
    keys: dict[str, int | None] = {}
    post_errors = Counter()

    def reader() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                try:
                    gets[session.get(f"{faults.stack.url}/", timeout=15).status_code] += 1
                except requests.RequestException as error:
                    gets[type(error).__name__] += 1

    def writer() -> None:
        browser = DashboardClient(faults.stack.url)
        while not stop.is_set():
            key = str(uuid.uuid4())
            for _ in range(5):  # a browser's retry: the same form, the same key
                try:
                    response = browser.submit(operation="add", x="1", y="1", idempotency_key=key)
                except requests.RequestException as error:
                    post_errors[type(error).__name__] += 1
                    continue
                if (pk := browser.submitted_id(response)) is not None:
                    keys[key] = pk
                    break
                post_errors[response.status_code] += 1

    threads = [threading.Thread(target=target) for target in (reader, reader, writer, writer)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(2)
        faults.stack.kill("web1")
        time.sleep(4)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        faults.restart("web1")
    wait_for(lambda: "web/web1" in faults.stack.servers_up(), timeout=30)
    rows = faults.query(
        "SELECT LOWER(HEX(idempotency_key)), COUNT(*) FROM tasks_computation WHERE idempotency_key IS NOT NULL "
        "GROUP BY idempotency_key"
    )
    per_key = {key: count for key, count in rows}
    accepted_keys = {key.replace("-", "") for key in keys}
    report(
        "replica lost",
        gets=sum(gets.values()),
        failed_gets=sum(n for code, n in gets.items() if code != 200),
        posts_accepted=len(keys),
        post_failures_retried=dict(post_errors),
        applied_twice=sum(1 for key in accepted_keys if per_key.get(key, 0) > 1),
    )
    assert set(gets) == {200}
    assert keys and all(per_key.get(key) == 1 for key in accepted_keys)


def test_after_everything_is_killed_at_once_the_sweep_ends_every_stuck_row(faults: Faults):
    count = 40 if FULL else 12
    ids, _ = submit_many(faults, count, clients=4, operation="add", x="3", y="4", work_seconds="3")
    wait_for(lambda: faults.statuses(ids)["running"] >= 2, timeout=30)
    for name in list(faults.stack.processes):
        faults.stack.kill(name)
    faults.redis.kill()
    faults.mariadb.kill()
    faults.mariadb.start()
    faults.redis.start()
    stuck = faults.statuses(ids)
    restarted = time.monotonic()
    faults.stack.start()
    faults.stack.wait_until_ready()
    recovery = faults.wait_until_ended(ids, timeout=180)
    rows = faults.query(f"SELECT status, result FROM tasks_computation WHERE id IN ({','.join(map(str, ids))})")
    report(
        "everything killed",
        computations=count,
        stuck_at_restart=stuck["queued"] + stuck["running"],
        succeeded=sum(1 for status, result in rows if (status, result) == ("succeeded", "7")),
        lost=count - len(rows),
        seconds_from_restart_to_all_ended=round(time.monotonic() - restarted, 1),
        seconds_after_ready=round(recovery, 1),
    )
    assert stuck["queued"] + stuck["running"] > 0, "the kill left rows stuck"
    assert len(rows) == count and all((status, result) == ("succeeded", "7") for status, result in rows)


# A diamond with a fan-in after it: 2, then 20 and 200, then 220, then 222; each step but the last two works a second.
WORKFLOW = {
    "steps": [
        {"operation": "add", "inputs": {"x": 1, "y": 1}, "work_seconds": 1},
        {"operation": "multiply", "inputs": {"x": {"step": 1}, "y": 10}, "work_seconds": 1},
        {"operation": "multiply", "inputs": {"x": {"step": 1}, "y": 100}, "work_seconds": 1},
        {"operation": "add", "inputs": {"x": {"step": 2}, "y": {"step": 3}}},
        {"operation": "sum", "inputs": {"values": [{"step": 4}, {"step": 1}]}},
    ]
}
WORKFLOW_RESULTS = {1: "2", 2: "20", 3: "200", 4: "220", 5: "222"}


def test_workflows_end_with_no_step_run_twice_when_workers_die_and_the_broker_restarts(faults: Faults):
    count, kills = (30, 6) if FULL else (8, 2)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {api_token(faults.stack, 'flows')}"
    workflows = []
    for _ in range(count):
        response = session.post(f"{faults.stack.url}/api/v1/workflows", json=WORKFLOW, timeout=30)
        assert response.status_code == 201, response.text
        workflows.append(response.json()["id"])
    listed = ",".join(map(str, workflows))
    steps = [pk for (pk,) in faults.query(f"SELECT id FROM tasks_computation WHERE workflow_id IN ({listed})")]
    started = time.monotonic()
    rng = random.Random(32)
    for _ in range(kills):
        wait_for(lambda: faults.running_now(steps), timeout=60)
        time.sleep(rng.uniform(0, 1))
        faults.stack.kill("worker")
        faults.restart("worker")
    faults.redis.stop()
    time.sleep(2)
    faults.redis.start()

    def all_ended() -> bool:
        (open_,) = faults.query(f"SELECT COUNT(*) FROM tasks_workflow WHERE id IN ({listed}) AND ended_at IS NULL")[0]
        return open_ == 0

    wait_for(all_ended, timeout=600 if FULL else 240, interval=0.5)
    rows = faults.query(
        f"SELECT workflow_id, step, status, result, error FROM tasks_computation WHERE workflow_id IN ({listed})"
    )
    _, ends = faults.runs()
    statuses = Counter(status for _, _, status, _, _ in rows)
    whole = {pk for pk in workflows if all(s == "succeeded" for w, _, s, _, _ in rows if w == pk)}
    report(
        "workflows, workers killed and the broker restarted",
        workflows=count,
        steps=len(rows),
        kills=kills,
        workflows_succeeded=len(whole),
        steps_failed_after_retry_budget=statuses["failed"],
        steps_not_run=statuses["not_run"],
        recorded_twice=sum(1 for pk in steps if ends[pk] > 1),
        seconds=round(time.monotonic() - started, 1),
    )
    assert len(rows) == count * len(WORKFLOW_RESULTS)
    assert not statuses.keys() - {"succeeded", "failed", "not_run"}, statuses
    for workflow, step, status, result, error in rows:
        if status == "succeeded":
            assert result == WORKFLOW_RESULTS[step], (workflow, step, result)
        elif status == "failed":
            assert error == GAVE_UP
    assert all(ends[pk] <= 1 for pk in steps), "a step's outcome was recorded twice"
    assert len(whole) >= count - kills, "only a workflow whose step was killed on each attempt may fail"
