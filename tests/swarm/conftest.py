"""The stack on a three-node Docker Swarm (cluster.py), deployed as the README's "Beyond one machine" says: a
registry on the second node, the project's image (built once, by the container tests' engine) and the stand-in base
images pushed there, the data node labelled, the secrets made, `docker stack deploy` with compose/stack.yaml.

Reached only through HAProxy on each node's own address (10.214.0.11-13:8080), from this host's end of the bridge.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import requests

from tests import helpers
from tests.containers import standins
from tests.containers.engine import Engine
from tests.helpers import runs_in, wait_for, web_servers_up
from tools.stack import ROOT

from .cluster import HOME, Cluster, Node

STACK_FILE = ROOT / "compose" / "stack.yaml"
REPORT = ROOT / "var" / "swarm.txt"
NAME = "dashboard"
PORT = 8080
# The node MySQL, the broker and Prometheus are pinned to (dashboard.data=true): the third, so that the loss of the
# first (the leader) or of the second (the registry) costs no data.
DATA_NODE = "node3"
SECRET_NAMES = (
    "secret_key",
    "mysql_password",
    "mysql_root_password",
    "admin_password",
    "flower_password",
    "stats_password",
    "proxy_secret",
)
IMAGES = ("mysql", "redis", "haproxy", "prometheus", "node_exporter")


def report(name: str, **figures: object) -> None:
    helpers.report(REPORT, name, **figures)


@dataclass
class Deployed:
    """The deployed stack, and what the tests need of it."""

    cluster: Cluster
    values: dict[str, str]
    secrets: dict[str, str] = field(repr=False)

    def url(self, node: Node | None = None) -> str:
        return f"http://{(node or self.cluster.nodes[0]).address}:{PORT}"

    @property
    def credentials(self) -> dict[str, str]:
        """What the probe and the admin session read: the users and their passwords."""
        return {
            "ADMIN_USERNAME": "admin",
            "ADMIN_PASSWORD": self.secrets["admin_password"],
            "FLOWER_USER": "flower",
            "FLOWER_PASSWORD": self.secrets["flower_password"],
            "STATS_USER": "stats",
            "STATS_PASSWORD": self.secrets["stats_password"],
        }

    def docker(self, *arguments: str, check: bool = True, **options: object) -> subprocess.CompletedProcess[str]:
        """A docker command on a manager that answers, with the deployment's variables (`stack deploy` reads them)."""
        return self.cluster.manager().docker(*arguments, check=check, variables=self.values, **options)

    def deploy(self) -> float:
        """`docker stack deploy`; the seconds until every service has its tasks running and the site answers on
        every node."""
        started = time.monotonic()
        self.docker("stack", "deploy", "--compose-file", str(STACK_FILE), NAME)
        self.wait_until_healthy()
        return time.monotonic() - started

    def wait_until_healthy(self, timeout: float = 300) -> None:
        def healthy() -> bool:
            listed = self.docker("stack", "services", NAME, "--format", "{{.Name}} {{.Replicas}}").stdout.split("\n")
            converged = all(
                (name.endswith("_migrate") or (want == have and want != "0"))
                for name, have, want in (re.match(r"(\S+) (\d+)/(\d+)", line).groups() for line in listed if line)
            )
            return converged and all(self.answers(node) for node in self.cluster.nodes)

        wait_for(healthy, timeout=timeout, interval=2)

    def answers(self, node: Node) -> bool:
        try:
            return (
                requests.get(f"{self.url(node)}/healthz", timeout=5).status_code == 200
                and len(self.web_servers_up(node)) >= 1
            )
        except requests.RequestException:
            return False

    def web_servers_up(self, node: Node | None = None) -> set[str]:
        """The web replicas the HAProxy of `node` finds UP."""
        return web_servers_up(self.url(node), (self.credentials["STATS_USER"], self.credentials["STATS_PASSWORD"]))

    def tasks(self, service: str) -> list[dict[str, str]]:
        """The service's running tasks: {"Node": ..., "Name": ..., "CurrentState": ...}."""
        output = self.docker(
            "service", "ps", f"{NAME}_{service}", "--filter", "desired-state=running", "--format", "{{json .}}"
        ).stdout
        return [json.loads(line) for line in output.splitlines() if line]

    def containers_on(self, node: Node) -> list[str]:
        """The stack's containers that run on `node` now."""
        listed = node.docker("ps", "--quiet", "--filter", f"label=com.docker.stack.namespace={NAME}")
        return listed.stdout.split()

    def node_status(self, node: str) -> str:
        return self.docker("node", "inspect", "--format", "{{.Status.State}}", node).stdout.strip().capitalize()

    def sql(self, statement: str) -> list[list[str]]:
        """Rows of a statement run by the mysql client in the MySQL container (on the data node), as root."""
        data = next(node for node in self.cluster.nodes if node.name == DATA_NODE)
        container = data.docker("ps", "--quiet", "--filter", f"name={NAME}_mysql").stdout.split()[0]
        command = (
            'exec mysql --user=root --password="$(cat /run/secrets/mysql_root_password)" --batch --skip-column-names '
            'dashboard --execute "$1"'
        )
        output = data.docker("exec", container, "sh", "-c", command, "sh", statement)
        return [line.split("\t") for line in output.stdout.splitlines()]

    def alerts(self) -> dict[str, str]:
        """{alert name: "pending" or "firing"}, as the stack's own Prometheus (on the data node) has them now."""
        data = next(node for node in self.cluster.nodes if node.name == DATA_NODE)
        container = data.docker("ps", "--quiet", "--filter", f"name={NAME}_prometheus").stdout.split()[0]
        answer = data.docker(
            "exec", container, "wget", "--quiet", "--output-document=-", "http://127.0.0.1:9090/api/v1/alerts"
        )
        return {alert["labels"]["alertname"]: alert["state"] for alert in json.loads(answer.stdout)["data"]["alerts"]}

    def statuses(self, ids: list[int]) -> Counter:
        if not ids:
            return Counter()
        rows = self.sql(
            f"SELECT status, COUNT(*) FROM tasks_computation WHERE id IN ({','.join(map(str, ids))}) GROUP BY status"
        )
        return Counter({status: int(count) for status, count in rows})

    def in_flight(self, ids: list[int]) -> int:
        counts = self.statuses(ids)
        return counts["queued"] + counts["running"]

    def new_revision(self) -> str:
        """The project's image with a new revision label, built on the registry's node and pushed there: a release,
        as the swarm sees one."""
        node = self.cluster.nodes[1]
        current = self.values["IMAGE"]
        revision = f"{current.rsplit(':', 1)[0]}:revision-{int(time.time())}"
        dockerfile = f"FROM {current}\nLABEL org.opencontainers.image.revision={revision.rsplit(':', 1)[1]}\n"
        node.docker("build", "--quiet", "--tag", revision, "-", input=dockerfile)
        node.docker("push", "--quiet", revision)
        # Pulled on every node now, as each pulled the first: a node that takes over a lost node's tasks needs no
        # registry then (the registry's own node may be the one lost).
        for each in self.cluster.nodes:
            each.docker("pull", "--quiet", revision)
        return revision

    def runs(self) -> tuple[Counter, Counter]:
        """Per computation, how many runs the workers' logs (every node's) say started and ended."""
        return runs_in("".join(self.service_logs(f"{NAME}_{service}") for service in ("worker", "worker-instant")))

    def service_logs(self, service: str) -> str:
        """A service's logs: each node's containers of it, read from that node's own engine. `docker service logs`
        streams them through the managers instead, and after the leader's power cut it hung on every read of a
        fresh clone's run (three minutes, twice in a row) though every node was back; the containers' own logs are
        the same lines, the exited ones' too."""
        logs = []
        for node in self.cluster.nodes:
            label = f"label=com.docker.swarm.service.name={service}"
            containers = node.docker("ps", "--all", "--quiet", "--filter", label, timeout=60).stdout.split()
            for container in containers:
                read = node.docker("logs", container, check=False, timeout=60)
                logs.append(read.stdout + read.stderr)
        return "".join(logs)


def push_images(cluster: Cluster, engine: Engine, app_image: str) -> dict[str, str]:
    """The registry on the second node, and the images pushed to it: {variable: image} for `stack deploy`."""
    node = cluster.nodes[1]
    registry = standins.STANDINS["registry"]
    registry.load(node)
    storage = HOME / "registry"
    storage.mkdir(parents=True, exist_ok=True)
    node.docker("rm", "--force", "registry", check=False)  # an earlier run's, which its restart policy brought back
    node.docker(
        "run",
        "--detach",
        "--name",
        "registry",
        "--restart",
        "always",
        "--publish",
        "5000:5000",
        "--volume",
        f"{storage}:/var/lib/docker-registry",
        registry.image,
    )
    wait_for(lambda: _answers(f"http://{cluster.registry}/v2/"), timeout=30)
    images = {}
    for name in IMAGES:
        standin = standins.STANDINS[name]
        standin.load(node)
        images[f"{name.upper()}_IMAGE"] = push(node, standin.image, f"{cluster.registry}/{standin.image}")
    # The project's image, built once by the engine of the container tests; loaded here unless it is here already.
    built = engine.docker("image", "inspect", "--format", "{{.Id}}", app_image).stdout.strip()
    if node.docker("image", "inspect", "--format", "{{.Id}}", app_image, check=False).stdout.strip() != built:
        saved = subprocess.Popen(["docker", "save", app_image], stdout=subprocess.PIPE, env=engine.environment)
        subprocess.run(
            ["docker", "load", "--quiet"], stdin=saved.stdout, env=node.environment, check=True, capture_output=True
        )
        assert saved.wait() == 0
    images["IMAGE"] = push(node, app_image, f"{cluster.registry}/computation-dashboard:{built[7:19]}")
    return images


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False


def push(node: Node, image: str, target: str) -> str:
    node.docker("tag", image, target)
    node.docker("push", "--quiet", target)
    return target


def make_secrets(node: Node) -> dict[str, str]:
    """The seven secrets, as the README makes them (`docker secret create NAME -`)."""
    made = {name: secrets.token_urlsafe(48 if name == "secret_key" else 18) for name in SECRET_NAMES}
    for name, value in made.items():
        node.docker("secret", "create", name, "-", input=value)
    return made


@pytest.fixture(scope="session")
def swarm(
    engine: Engine, app_image: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Deployed]:
    """Three nodes, the stack deployed and healthy; the swarm and every trace of it removed at the end."""
    cluster = Cluster()
    try:
        formed = cluster.start()
        started = time.monotonic()
        images = push_images(cluster, engine, app_image)
        pushed = time.monotonic() - started
        first = cluster.nodes[0]
        first.docker("node", "update", "--label-add", "dashboard.data=true", DATA_NODE)
        addresses = ",".join(node.address for node in cluster.nodes)
        values = {
            **images,
            "ALLOWED_HOSTS": addresses,
            "HTTP_PORT": str(PORT),
            "HTTPS": "false",
            "LOG_LEVEL": "INFO",
            # The tests come from one address, far faster than people; the limits have tests of their own.
            "SUBMISSION_RATE_LIMIT": "1000000/m",
            "HAPROXY_RATE_LIMIT": "1000000",
            "HAPROXY_CONNECTIONS_PER_ADDRESS": "10000",
            "COMPUTATION_MAX_QUEUED_PER_CLIENT": "1000000",
            # A lost node's rows are taken over sooner than the defaults, so the tests take seconds.
            "COMPUTATION_STALE_AFTER_SECONDS": "6",
            "COMPUTATION_SWEEP_SECONDS": "2",
            "WORKER_LOST_AFTER_SECONDS": "12",
        }
        deployed = Deployed(cluster, values, make_secrets(first))
        healthy = deployed.deploy()
        report(
            "deploy", swarm_seconds=round(formed, 1), images_seconds=round(pushed, 1), healthy_seconds=round(healthy, 1)
        )
        yield deployed
    finally:
        if request.session.testsfailed:
            with_logs(cluster, tmp_path_factory.getbasetemp() / "swarm.log")
        cluster.stop()
    assert cluster.leftovers() == [], "the swarm is removed without a trace"


def with_logs(cluster: Cluster, path) -> None:
    """Every service's log, for a failed run's reader. A node that was lost leaves `service logs` waiting for a
    stream that never comes: each is given a minute."""
    with path.open("w") as out:
        for node in cluster.nodes:
            if node.answers():
                services = node.docker("service", "ls", "--format", "{{.Name}}", check=False).stdout.split()
                for service in services:
                    try:
                        logs = node.docker("service", "logs", "--timestamps", "--raw", service, check=False, timeout=60)
                    except subprocess.TimeoutExpired as expired:
                        logs = subprocess.CompletedProcess(expired.cmd, -1, "", "(no answer within a minute)")
                    out.write(f"==== {service}\n{logs.stdout}{logs.stderr}\n")
                return
