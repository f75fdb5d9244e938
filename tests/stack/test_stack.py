"""The local stack, driven over HTTP through HAProxy as people and operators use it."""

import gzip
import os
import re
import time
from collections import Counter
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import admin_session, readers, wait_for
from tests.probe import probe
from tools.stack import Stack

pytestmark = pytest.mark.stack


def session_with_csrf(stack: Stack) -> tuple[requests.Session, str]:
    session = requests.Session()
    page = session.get(f"{stack.url}/", timeout=10)
    assert page.status_code == 200
    return session, session.cookies["csrftoken"]


def submit(stack: Stack, **data: str) -> int:
    """A plain form post, as a browser without script sends it; returns the new computation's id."""
    session, token = session_with_csrf(stack)
    response = session.post(f"{stack.url}/computations/", data={"csrfmiddlewaretoken": token, **data}, timeout=10)
    assert response.history and response.history[0].status_code == 303, response.text[:500]
    return int(re.search(r"Computation #(\d+) is queued", response.text).group(1))


def computation(stack: Stack, pk: int) -> dict:
    return requests.get(f"{stack.url}/api/computations/{pk}", timeout=10).json()


def ended(stack: Stack, pk: int, timeout: float = 30) -> dict:
    return wait_for(
        lambda: (data := computation(stack, pk))["status"] not in ("queued", "running") and data, timeout=timeout
    )


def test_a_form_submission_through_haproxy_runs_to_its_result(stack):
    pk = submit(stack, operation="factorize", n="360", work_seconds="1")
    data = ended(stack, pk)
    assert data["status"] == "succeeded" and data["result"] == "2^3 × 3^2 × 5"
    assert data["worker"].startswith("heavy@") and data["attempts"] == 1


def test_a_post_without_the_csrf_token_is_refused(stack):
    response = requests.post(f"{stack.url}/computations/", data={"operation": "add", "x": "1", "y": "2"}, timeout=10)
    assert response.status_code == 403


def test_flower_requires_credentials_and_lists_the_task(stack):
    pk = submit(stack, operation="add", x="2", y="3")
    task_id = ended(stack, pk)["task_id"]
    assert requests.get(f"{stack.url}/flower/", timeout=10).status_code == 401
    wrong = (stack.environment["FLOWER_USER"], "not-the-password")
    assert requests.get(f"{stack.url}/flower/", auth=wrong, timeout=10).status_code == 401
    auth = (stack.environment["FLOWER_USER"], stack.environment["FLOWER_PASSWORD"])
    assert requests.get(f"{stack.url}/flower/", auth=auth, timeout=10).status_code == 200

    def listed() -> dict | None:
        tasks = requests.get(f"{stack.url}/flower/api/tasks", auth=auth, timeout=10).json()
        return tasks.get(task_id)

    task = wait_for(listed, timeout=20)
    assert task["name"] == "tasks.run_computation"


def test_metrics_and_flowers_open_endpoints_are_only_on_the_monitoring_listener(stack):
    monitor = f"http://127.0.0.1:{stack.ports.monitor}"
    for path in ("/metrics", "/flower/metrics", "/flower/healthcheck", "/haproxy/metrics"):
        assert requests.get(f"{stack.url}{path}", timeout=10).status_code == 404, path
        assert requests.get(f"{monitor}{path}", timeout=10).status_code == 200, path
    assert requests.get(f"{monitor}/", timeout=10).status_code == 404
    assert requests.get(f"{monitor}/admin/", timeout=10).status_code == 404


def test_each_scraped_endpoint_speaks_prometheus_text_format(stack):
    ended(stack, submit(stack, operation="add", x="1", y="1"))
    monitor = f"http://127.0.0.1:{stack.ports.monitor}"
    families = {}
    for path in ("/metrics", "/haproxy/metrics", "/flower/metrics"):
        text = requests.get(f"{monitor}{path}", timeout=10).text
        families[path] = {family.name: family for family in text_string_to_metric_families(text)}
    ours = families["/metrics"]
    submitted = {
        sample.labels["operation"]: sample.value for sample in ours["dashboard_computations_submitted"].samples
    }
    assert submitted["add"] >= 1
    finished = ours["dashboard_computations_finished"].samples
    assert any(s.labels == {"operation": "add", "status": "succeeded"} and s.value >= 1 for s in finished)
    assert ours["dashboard_computation_end_to_end_seconds"].type == "histogram"
    assert "dashboard_queue_depth" in ours
    assert any(name.startswith("haproxy_backend") for name in families["/haproxy/metrics"])
    assert any(name.startswith("flower_") for name in families["/flower/metrics"])


def test_haproxy_stats_require_credentials(stack):
    assert requests.get(f"{stack.url}/haproxy/stats", timeout=10).status_code == 401
    auth = (stack.environment["STATS_USER"], stack.environment["STATS_PASSWORD"])
    assert requests.get(f"{stack.url}/haproxy/stats", auth=auth, timeout=10).status_code == 200


def test_the_admin_requires_login_and_shows_computations(stack):
    pk = submit(stack, operation="multiply", x="6", y="7")
    ended(stack, pk)
    anonymous = requests.get(f"{stack.url}/admin/tasks/computation/", allow_redirects=False, timeout=10)
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous.headers["Location"]

    session = requests.Session()
    login_page = session.get(f"{stack.url}/admin/login/", timeout=10)
    assert login_page.status_code == 200
    token = session.cookies["csrftoken"]
    env = stack.environment
    bad = session.post(
        f"{stack.url}/admin/login/",
        data={"csrfmiddlewaretoken": token, "username": env["ADMIN_USERNAME"], "password": "wrong-password"},
        timeout=10,
    )
    assert "Please enter the correct username and password" in bad.text
    admin, changelist = admin_session(stack.url, env, landing="/admin/tasks/computation/")
    assert f"/admin/tasks/computation/{pk}/change/" in changelist.text
    detail = admin.get(f"{stack.url}/admin/tasks/computation/{pk}/change/", timeout=10)
    assert detail.status_code == 200 and "/flower/task/" in detail.text


def test_static_files_are_served_with_far_future_caching(stack):
    page = requests.get(f"{stack.url}/", timeout=10).text
    for path in re.findall(r'(?:href|src)="(/static/[^"]+\.[0-9a-f]{12}\.(?:css|js))"', page):
        response = requests.get(f"{stack.url}{path}", timeout=10)
        assert response.status_code == 200
        assert "immutable" in response.headers["Cache-Control"]
    assert len(re.findall(r"/static/[^\"]+\.[0-9a-f]{12}\.", page)) >= 2


def test_readiness_through_haproxy(stack):
    response = requests.get(f"{stack.url}/readyz", timeout=10)
    assert response.status_code == 200 and response.json() == {"database": "ok", "broker": "ok", "cache": "ok"}


def test_request_bodies_over_the_limit_are_refused(stack):
    response = requests.post(f"{stack.url}/computations/", data=b"x" * (256 * 1024 + 1), timeout=10)
    assert response.status_code == 413


def test_a_replicas_drain_mark_is_its_own_to_make(stack):
    """A file at the old, guessable path in the shared /tmp takes no replica out; the real mark lives in a directory
    of each replica's own, inside the stack's (all 0700, ours), where it does."""
    replicas = [f"http://127.0.0.1:{port}/healthz" for port in stack.ports.web]
    guessed = Path(f"/tmp/dashboard-web-{stack.ports.web[0]}.draining")
    guessed.touch()
    try:
        assert requests.get(replicas[0], timeout=10).status_code == 200
    finally:
        guessed.unlink()
    own = sorted(stack.runtime.glob("dashboard-web.*"))
    assert len(own) == 2
    for directory in (stack.runtime, *own):
        assert directory.stat().st_mode & 0o777 == 0o700 and directory.stat().st_uid == os.getuid(), directory
    mark = own[0] / "draining"
    mark.touch()
    try:
        assert sorted(requests.get(url, timeout=10).status_code for url in replicas) == [200, 503]
    finally:
        mark.unlink()


def test_both_replicas_serve_requests(stack):
    def served() -> Counter:
        return Counter({row["svname"]: int(row["stot"]) for row in stack.stats() if row["# pxname"] == "web"})

    before = served()
    for _ in range(20):
        assert requests.get(f"{stack.url}/healthz", timeout=10).status_code == 200
    after = served()
    assert after["web1"] - before["web1"] >= 5 and after["web2"] - before["web2"] >= 5


@pytest.mark.parametrize("how", ["killed", "stopped"])
def test_losing_a_replica_while_requests_flow_fails_no_get(stack, how):
    """Four clients GET the dashboard and its list while one replica dies (kill -9) or stops (TERM)."""
    with readers(stack.url) as (statuses, errors):
        try:
            time.sleep(1.5)
            if how == "killed":
                stack.kill("web1")
            else:
                stack.stop("web1")
            time.sleep(3)
        finally:
            stack.start("web1")
    wait_for(lambda: "web/web1" in stack.servers_up(), timeout=30)
    total = sum(statuses.values()) + len(errors)
    print(f"\nreplica {how}: {total} GETs, {dict(statuses)}, {len(errors)} errors")
    assert total > 50
    assert errors == [] and set(statuses) == {200}, (statuses, errors[:3])


def test_the_deployment_probe_passes(stack):
    """The same first checks the container tests make of the Compose deployment."""
    probe(stack.url, stack.environment)


def test_pages_and_polls_are_compressed_and_an_unchanged_poll_still_answers_304(stack):
    for value in range(3):
        submit(stack, operation="add", x=str(value), y="1")
    # Running, so the list answers 200, which HAProxy compresses; Django compresses the last poll's 286.
    submit(stack, operation="add", x="1", y="1", work_seconds="3")
    headers = {"HX-Request": "true", "Accept-Encoding": "gzip"}
    with requests.get(f"{stack.url}/computations/", headers=headers, stream=True, timeout=10) as response:
        wire = response.raw.read(decode_content=False)
    assert response.status_code == 200 and response.headers["Content-Encoding"] == "gzip"
    html = gzip.decompress(wire).decode()
    assert len(wire) * 3 < len(html), (len(wire), len(html))
    etag = re.search(r'"If-None-Match": "\\"([^"\\]+)\\""', html).group(1)
    asking = {**headers, "If-None-Match": f'"{etag}"'}
    unchanged = requests.get(f"{stack.url}/computations/", headers=asking, timeout=10)
    assert unchanged.status_code == 304 and not unchanged.content
    # HAProxy adds no policy to a 304 either: an open dashboard's unchanged polls stay small.
    assert not {"Content-Security-Policy", "X-Frame-Options", "Referrer-Policy"} & set(unchanged.headers)
    assert unchanged.headers["ETag"] == f'"{etag}"'

    # The poll that ends the polling carries the whole list too, compressed once (Django's, which HAProxy passes).
    def last_poll() -> tuple[requests.Response, bytes] | None:
        with requests.get(f"{stack.url}/computations/", headers=headers, stream=True, timeout=10) as answer:
            return (answer, answer.raw.read(decode_content=False)) if answer.status_code == 286 else None

    done, wire = wait_for(last_poll, timeout=20)
    assert done.headers["Content-Encoding"] == "gzip"
    assert 'id="computation-list"' in gzip.decompress(wire).decode()
    # Not asked for, not compressed: wrk and scripts get plain HTML.
    plain = requests.get(f"{stack.url}/", headers={"Accept-Encoding": "identity"}, timeout=10)
    assert "Content-Encoding" not in plain.headers and "<html" in plain.text
