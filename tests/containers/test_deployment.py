"""The Compose deployment, built, started, scaled, broken and upgraded as the README says, on MySQL 9.7.

The tests run in this order on one deployment, each leaving it as it found it: three web replicas, two heavy workers
and an instant one.
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import yaml

from tests.helpers import DashboardClient, readers, wait_for
from tests.probe import ended, probe
from tools.ports import free_ports

from .deployment import COMPOSE, COMPOSE_FILE, ROOT, SCALE, Deployment, deployment_values, env_file, report
from .engine import BRIDGE

pytestmark = pytest.mark.containers


def test_the_image_runs_unprivileged_without_a_compiler(deployment: Deployment):
    image = deployment.values["IMAGE"]
    inspected = deployment.engine.docker("image", "inspect", "--format", "{{.Config.User}} {{.Size}}", image)
    user, size = inspected.stdout.split()
    assert user == "10001:10001"
    tools = deployment.engine.docker(
        "run", "--rm", "--entrypoint", "sh", image, "-c", "command -v gcc cc c++ make ld || true"
    ).stdout
    assert tools.strip() == "", f"build tools in the image: {tools}"
    whoami = deployment.engine.docker("run", "--rm", "--entrypoint", "id", image, "-u").stdout.strip()
    assert whoami == "10001"
    report("image", size_mb=round(int(size) / 1e6))


def test_every_service_is_healthy_and_haproxy_found_the_three_replicas(deployment: Deployment):
    containers = deployment.containers()
    migrations = [c for c in containers if c["Service"] == "migrate"]
    assert len(migrations) == 1 and migrations[0]["State"] == "exited" and migrations[0]["ExitCode"] == 0
    running = Counter(c["Service"] for c in containers if c["State"] == "running")
    assert running == Counter(mysql=1, redis=1, cache=1, web=3, worker=2, beat=2, flower=1, haproxy=1) + Counter(
        {"worker-instant": 1}
    )
    unhealthy = [c["Name"] for c in containers if c["State"] == "running" and c["Health"] != "healthy"]
    assert unhealthy == []
    wait_for(lambda: len(deployment.web_servers_up()) == 3, timeout=30, interval=1)
    version = deployment.sql("SELECT VERSION()")[0][0]
    assert version.startswith("9.7"), version


def test_the_probe_passes_through_the_published_port(deployment: Deployment):
    probe(deployment.url, deployment.values)


def test_the_audit_trail_records_the_clients_address_not_haproxys(deployment: Deployment):
    """With .env.example's TRUSTED_PROXIES (empty: Compose's private ranges), the replicas believe HAProxy, which
    saw this client as the bridge's gateway (Docker's proxy of the published port)."""
    browser = DashboardClient(deployment.url)
    pk = browser.submitted_id(browser.submit(operation="add", x="1", y="1", work_seconds="30"))
    cancelled = browser.session.post(
        f"{deployment.url}/api/computations/{pk}/cancel", headers={"X-CSRFToken": browser.token}, timeout=10
    )
    assert cancelled.status_code == 200
    (address,) = deployment.sql("SELECT address FROM tasks_auditentry ORDER BY id DESC LIMIT 1")[0]
    network = f"{deployment.project}_default"
    gateway = deployment.engine.docker(
        "network", "inspect", "--format", "{{(index .IPAM.Config 0).Gateway}}", network
    ).stdout.strip()
    haproxy = deployment.containers("haproxy")[0]["Name"]
    haproxy_address = deployment.engine.docker(
        "inspect", "--format", f'{{{{(index .NetworkSettings.Networks "{network}").IPAddress}}}}', haproxy
    ).stdout.strip()
    assert address == gateway and address != haproxy_address, (address, gateway, haproxy_address)


def test_scaling_the_web_down_and_up_fails_no_get_and_replays_no_post(deployment: Deployment):
    marker = uuid.uuid4().int % 10**6 * 10**6
    posted: Counter = Counter()
    accepted: list[int] = []
    stop = threading.Event()

    def poster() -> None:
        browser = DashboardClient(deployment.url)
        for n in range(marker, marker + 10**6):
            if stop.is_set():
                return
            try:
                # No idempotency key, and each its own input: a POST HAProxy replayed would be a second row of it.
                answer = browser.session.post(
                    f"{deployment.url}/computations/",
                    headers={"HX-Request": "true"},
                    timeout=30,
                    data={"csrfmiddlewaretoken": browser.token, "operation": "add", "x": str(n), "y": "1"},
                )
                posted[answer.status_code] += 1
                if answer.status_code == 200:
                    accepted.append(n)
            except requests.RequestException:
                posted["error"] += 1
            time.sleep(0.2)

    with readers(deployment.url) as (statuses, errors):
        thread = threading.Thread(target=poster)
        thread.start()
        try:
            deployment.compose("up", "--detach", "--no-deps", "--wait", "--scale", "web=1", "web")
            wait_for(lambda: len(deployment.web_servers_up()) == 1, timeout=30)
            time.sleep(2)
            deployment.compose("up", "--detach", "--no-deps", "--wait", "--scale", "web=4", "web")
            wait_for(lambda: len(deployment.web_servers_up()) == 4, timeout=60)
            time.sleep(2)
        finally:
            stop.set()
            thread.join()
    rows = deployment.sql(
        "SELECT JSON_UNQUOTE(JSON_EXTRACT(inputs, '$.x')), COUNT(*) FROM tasks_computation"
        f" WHERE operation = 'add' AND CAST(JSON_UNQUOTE(JSON_EXTRACT(inputs, '$.x')) AS DECIMAL(30))"
        f" BETWEEN {marker} AND {marker + 10**6} GROUP BY 1"
    )
    applied = {int(x): int(count) for x, count in rows}
    failed = len(errors) + sum(n for status, n in statuses.items() if status != 200)
    report(
        "scale web 3 → 1 → 4",
        gets=sum(statuses.values()),
        failed_gets=failed,
        posts=dict(posted),
        rows=sum(applied.values()),
    )
    assert sum(statuses.values()) > 50
    assert errors == [] and set(statuses) == {200}, (statuses, errors[:3])
    assert max(applied.values()) == 1, "a POST was applied twice"
    assert set(accepted) <= set(applied), "an accepted POST is missing"
    deployment.compose("up", "--detach", "--no-deps", "--wait", *SCALE[:2], "web")
    wait_for(lambda: len(deployment.web_servers_up()) == 3, timeout=30)


def submit_many(deployment: Deployment, count: int, **data: str) -> list[int]:
    browser = DashboardClient(deployment.url)
    ids = [browser.submitted_id(browser.submit(**data)) for _ in range(count)]
    assert None not in ids
    return ids


def statuses(deployment: Deployment, ids: list[int]) -> Counter:
    rows = deployment.sql(
        f"SELECT status, COUNT(*) FROM tasks_computation WHERE id IN ({','.join(map(str, ids))}) GROUP BY status"
    )
    return Counter({status: int(count) for status, count in rows})


def wait_until_ended(deployment: Deployment, ids: list[int], timeout: float) -> float:
    started = time.monotonic()
    wait_for(
        lambda: statuses(deployment, ids).keys() <= {"succeeded", "failed", "cancelled"}, timeout=timeout, interval=1
    )
    return time.monotonic() - started


def test_killing_a_worker_container_mid_run_loses_nothing_and_records_nothing_twice(deployment: Deployment):
    ids = submit_many(deployment, 12, operation="add", x="2", y="3", work_seconds="3")

    def running_on_both() -> bool:
        return statuses(deployment, ids)["running"] >= 2

    wait_for(running_on_both, timeout=60, interval=0.5)
    # The container whose worker runs one of them ("heavy@<its host name>", the container's short id).
    worker = deployment.sql(
        f"SELECT worker FROM tasks_computation WHERE status = 'running' AND id IN ({','.join(map(str, ids))}) LIMIT 1"
    )[0][0]
    deployment.engine.docker("kill", worker.split("@", 1)[1])
    seconds = wait_until_ended(deployment, ids, timeout=180)
    final = statuses(deployment, ids)
    started, finished = deployment.runs()
    assert all(started[pk] >= 1 for pk in ids), "every run is in the workers' logs"
    doubled = [pk for pk in ids if finished[pk] > 1]
    rerun = sum(1 for pk in ids if started[pk] > 1)
    report(
        "worker container killed",
        computations=len(ids),
        final=dict(final),
        rerun=rerun,
        recorded_twice=len(doubled),
        seconds_to_all_ended=round(seconds, 1),
    )
    assert final == Counter(succeeded=len(ids))
    assert doubled == []
    results = deployment.sql(f"SELECT DISTINCT result FROM tasks_computation WHERE id IN ({','.join(map(str, ids))})")
    assert results == [["5"]]
    deployment.up("--no-deps", *SCALE[2:], "worker")  # a killed container stays down, as after `docker kill`


def started_at(deployment: Deployment, *services: str) -> dict[str, str]:
    names = [c["Name"] for c in deployment.containers() if c["Service"] in services and c["State"] == "running"]
    inspected = deployment.engine.docker("inspect", "--format", "{{.Name}} {{.State.StartedAt}}", *names).stdout
    return dict(line.split() for line in inspected.splitlines())


@pytest.mark.parametrize("server", ["mysql", "redis"])
def test_restarting_mysql_or_redis_keeps_accepted_work_and_needs_no_app_restart(deployment: Deployment, server):
    apps = started_at(deployment, "web", "worker", "worker-instant", "beat", "flower")
    ids = submit_many(deployment, 6, operation="add", x="1", y="1", work_seconds="2")
    restarted = time.monotonic()
    deployment.compose("restart", server)
    wait_for(lambda: deployment.containers(server)[0]["Health"] == "healthy", timeout=120, interval=1)

    def page_answers() -> bool:
        try:
            return requests.get(f"{deployment.url}/", timeout=10).status_code == 200
        except requests.RequestException:
            return False

    wait_for(page_answers, timeout=120, interval=0.5)
    recovered = time.monotonic() - restarted
    wait_until_ended(deployment, ids, timeout=180)
    after = DashboardClient(deployment.url)
    new = after.submitted_id(after.submit(operation="multiply", x="6", y="7"))
    assert ended(deployment.url, new)["result"] == "42"
    errors = deployment.sql(
        f"SELECT id, error FROM tasks_computation WHERE status = 'failed' AND id IN ({','.join(map(str, ids))})"
    )
    report(
        f"{server} restarted",
        accepted_before=len(ids),
        final=dict(statuses(deployment, ids)),
        seconds_until_pages_answer=round(recovered, 1),
        errors=errors,
    )
    assert statuses(deployment, ids) == Counter(succeeded=len(ids))
    assert started_at(deployment, "web", "worker", "worker-instant", "beat", "flower") == apps, (
        "no app container restarted"
    )


def test_down_and_up_again_keeps_every_computation(deployment: Deployment):
    before = deployment.sql("SELECT COUNT(*), MAX(id) FROM tasks_computation")[0]
    assert int(before[0]) > 0
    deployment.compose("down", "--timeout", "30")
    assert deployment.containers() == []
    seconds = deployment.up(*SCALE)
    after = deployment.sql("SELECT COUNT(*), MAX(id) FROM tasks_computation")[0]
    report("down and up", computations=before[0], healthy_seconds=round(seconds, 1))
    assert after == before
    assert requests.get(f"{deployment.url}/computations/{before[1]}/", timeout=10).status_code == 200
    assert wait_for(lambda: len(deployment.web_servers_up()) == 3, timeout=30, interval=1)


def test_the_readmes_upgrade_recipe_fails_no_get(deployment: Deployment):
    """As the README says, with a new image: build, migrate, roll the web replicas, then the workers."""
    revision = f"test-{uuid.uuid4().hex[:8]}"
    with readers(deployment.url) as (statuses, errors):
        started = time.monotonic()
        deployment.compose("build", "--build-arg", f"REVISION={revision}", timeout=900)
        deployment.compose("run", "--rm", "migrate")
        rolled = rollout(deployment, "web")
        deployment.compose("up", "--detach", "--no-deps", "--wait", "worker", "worker-instant", "beat", "flower")
        seconds = time.monotonic() - started
        time.sleep(2)
    revisions = {
        deployment.engine.docker(
            "inspect", "--format", '{{index .Config.Labels "org.opencontainers.image.revision"}}', c["Name"]
        ).stdout.strip()
        for c in deployment.containers()
        if c["Service"] in ("web", "worker", "worker-instant", "beat", "flower")
    }
    failed = len(errors) + sum(n for status, n in statuses.items() if status != 200)
    report("upgrade", gets=sum(statuses.values()), failed_gets=failed, seconds=round(seconds, 1), rollout=rolled)
    assert revisions == {revision}
    assert errors == [] and set(statuses) == {200}, (statuses, errors[:3])
    assert len([c for c in deployment.containers("web") if c["State"] == "running"]) == 3


def rollout(deployment: Deployment, service: str) -> str:
    """compose/rollout, with this deployment's Compose."""
    files = " ".join(f"--file {file}" for file in deployment.files)
    compose = f"{COMPOSE} {files} --project-name {deployment.project} --env-file {deployment.env_file}"
    result = subprocess.run(
        [ROOT / "compose" / "rollout", service],
        env={**deployment.environment, "DOCKER_COMPOSE": compose},
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_prometheus_scrapes_the_dashboard_haproxy_flower_and_the_host_and_loads_the_alerts(deployment: Deployment):
    deployment.compose("--profile", "monitoring", "up", "--detach", "--wait", "prometheus", "node-exporter")
    prometheus = f"http://127.0.0.1:{deployment.values['PROMETHEUS_PORT']}/api/v1"
    url = f"{prometheus}/targets"

    def all_up() -> dict | None:
        try:
            targets = requests.get(url, timeout=5).json()["data"]["activeTargets"]
        except (requests.RequestException, ValueError, KeyError):
            return None
        health = {target["labels"]["job"]: target["health"] for target in targets}
        return health if health and set(health.values()) == {"up"} else None

    health = wait_for(all_up, timeout=90, interval=2)
    assert set(health) == {"dashboard", "haproxy", "flower", "node"}
    # Every alerting rule shipped is loaded and evaluates without error.
    shipped = yaml.safe_load((ROOT / "compose" / "alerts.yml").read_text())["groups"]
    expected = {rule["alert"]: "ok" for group in shipped for rule in group["rules"]}

    def evaluated() -> dict:
        groups = requests.get(f"{prometheus}/rules", timeout=5).json()["data"]["groups"]
        return {rule["name"]: rule["health"] for group in groups for rule in group["rules"]}

    wait_for(lambda: evaluated() == expected, timeout=60, interval=2)
    deployment.compose("--profile", "monitoring", "stop", "prometheus", "node-exporter")


def test_an_addition_ends_at_once_while_every_heavy_process_is_busy(deployment: Deployment):
    """Every process of the heavy workers (WORKER_CONCURRENCY each) running a long computation: an addition goes
    to the instant queue and its own worker."""
    containers = [c for c in deployment.containers("worker") if c["State"] == "running"]
    processes = len(containers) * int(deployment.values["WORKER_CONCURRENCY"])
    heavy = submit_many(deployment, processes, operation="factorize", n="360", work_seconds="20")
    assert wait_for(lambda: statuses(deployment, heavy)["running"] == processes, timeout=60, interval=0.5)
    browser = DashboardClient(deployment.url)
    started = time.monotonic()
    pk = browser.submitted_id(browser.submit(operation="add", x="2", y="2"))
    data = ended(deployment.url, pk, timeout=10)
    seconds = time.monotonic() - started
    busy = statuses(deployment, heavy)["running"]
    report("addition beside busy heavy workers", seconds_to_end=round(seconds, 2), heavy_running=busy)
    assert data["result"] == "4" and data["worker"].startswith("instant@")
    assert seconds < 2.5 and busy == processes, (seconds, busy)
    for each in heavy:  # the next tests find every process free
        browser.session.post(
            f"{deployment.url}/api/computations/{each}/cancel", headers={"X-CSRFToken": browser.token}, timeout=10
        )


def test_a_pool_of_submissions_through_the_containers_all_end_once(deployment: Deployment):
    with ThreadPoolExecutor(8) as pool:
        ids = [
            pk
            for part in pool.map(lambda _: submit_many(deployment, 25, operation="add", x="2", y="3"), range(8))
            for pk in part
        ]
    seconds = wait_until_ended(deployment, ids, timeout=180)
    report("load", submitted=len(ids), final=dict(statuses(deployment, ids)), seconds_to_drain=round(seconds, 1))
    assert statuses(deployment, ids) == Counter(succeeded=len(ids))


def test_the_stack_runs_on_an_external_mysql_and_redis(deployment: Deployment, tmp_path_factory):
    """The original project's option: the database and Redis are servers of the user's own (here containers that
    are not part of the project, reached through the engine's bridge address), named in .env; with
    compose/external.yaml, the bundled mysql, redis and cache do not start."""
    engine, bridge = deployment.engine, BRIDGE.split("/")[0]
    mysql_port, redis_port, cache_port = free_ports(3)
    password = uuid.uuid4().hex
    servers = {
        "external-mysql": [
            "-p",
            f"{bridge}:{mysql_port}:3306",
            "-e",
            f"MYSQL_ROOT_PASSWORD={password}",
            "-e",
            "MYSQL_DATABASE=shop",
            "-e",
            "MYSQL_USER=shopper",
            "-e",
            f"MYSQL_PASSWORD={password}",
            deployment.values["MYSQL_IMAGE"],
            "--log-bin-trust-function-creators=ON",
        ],
        "external-redis": ["-p", f"{bridge}:{redis_port}:6379", deployment.values["REDIS_IMAGE"]],
        "external-cache": ["-p", f"{bridge}:{cache_port}:6379", deployment.values["REDIS_IMAGE"]],
    }
    values = deployment_values(
        DATABASE_URL=f"mysql://shopper:{password}@{bridge}:{mysql_port}/shop",
        REDIS_URL=f"redis://{bridge}:{redis_port}/0",
        CACHE_URL=f"redis://{bridge}:{cache_port}/0",
    )
    external = Deployment(
        engine,
        env_file(tmp_path_factory.mktemp("external"), values),
        values,
        files=(COMPOSE_FILE, COMPOSE_FILE.with_name("external.yaml")),
        project="dashboard-external",
    )
    try:
        for name, arguments in servers.items():
            engine.docker("run", "--detach", "--name", name, *arguments)
        ping = ("exec", "external-mysql", "mysqladmin", "--host=127.0.0.1", "--user=root", f"--password={password}")
        wait_for(lambda: engine.docker(*ping, "ping", check=False).returncode == 0, timeout=120, interval=1)
        seconds = external.up("--scale", "web=1", "--scale", "worker=1")
        services = {c["Service"] for c in external.containers()}
        assert services.isdisjoint({"mysql", "redis", "cache"}), services
        probe(external.url, values)
        tables = engine.docker(
            "exec",
            "external-mysql",
            "mysql",
            "-uroot",
            f"-p{password}",
            "shop",
            "-N",
            "-e",
            "SELECT COUNT(*) FROM tasks_computation",
        ).stdout.split()
        assert tables == ["4"], "the probe's four computations are in the external database"
        report("external servers", healthy_seconds=round(seconds, 1), services=sorted(services))
    finally:
        external.compose("down", "--volumes", "--timeout", "10", check=False)
        engine.docker("rm", "--force", "--volumes", *servers, check=False)
