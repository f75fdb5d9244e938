"""The Compose deployment as the container tests drive it: its .env, made from .env.example, and `docker compose`
on the private engine (engine.py) with the stand-in base images (standins.py).

Only the image variables and this test's ports differ from what a user runs. The stack is reached through the one
port it publishes, on 127.0.0.1.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tests import helpers
from tests.helpers import runs_in, web_servers_up
from tools.ports import free_ports
from tools.stack import ROOT

from . import standins
from .engine import Engine

COMPOSE = ROOT / ".tools" / "compose" / "compose" / "docker-compose"
COMPOSE_FILE = ROOT / "compose" / "compose.yaml"
REPORT = ROOT / "var" / "containers.txt"
SECRETS = (
    "SECRET_KEY",
    "MYSQL_PASSWORD",
    "MYSQL_ROOT_PASSWORD",
    "ADMIN_PASSWORD",
    "FLOWER_PASSWORD",
    "STATS_PASSWORD",
    "PROXY_SECRET",
)
SCALE = ("--scale", "web=3", "--scale", "worker=2")


def report(name: str, **figures: object) -> None:
    """Prints a test's figures and appends them to var/containers.txt."""
    helpers.report(REPORT, name, **figures)


def deployment_values(**overrides: str) -> dict[str, str]:
    """A .env as the README says to write it: .env.example with its secrets filled in; the stand-in images; this
    test's free ports on 127.0.0.1; plain HTTP (no TLS terminator here)."""
    lines = (ROOT / ".env.example").read_text().splitlines()
    values = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    values |= {name: secrets.token_urlsafe(50 if name == "SECRET_KEY" else 18) for name in SECRETS}
    front, prometheus = free_ports(2)
    values |= {
        **standins.variables(),
        "HTTP_PORT": str(front),
        "HTTP_INTERFACE": "127.0.0.1",
        "PROMETHEUS_PORT": str(prometheus),
        "HTTPS": "false",
        # A dead worker's rows are taken over sooner than the default, so the tests take seconds.
        "COMPUTATION_STALE_AFTER_SECONDS": "6",
        # All the tests' submissions come from one address, faster than a person's; the limit has tests of its own.
        "SUBMISSION_RATE_LIMIT": "100000/m",
        "COMPUTATION_SWEEP_SECONDS": "2",
        **overrides,
    }
    return values


@dataclass
class Deployment:
    engine: Engine
    env_file: Path
    values: dict[str, str]
    files: tuple[Path, ...] = (COMPOSE_FILE,)
    project: str = "computation-dashboard"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.values['HTTP_PORT']}"

    def compose(self, *arguments: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        files = [argument for file in self.files for argument in ("--file", str(file))]
        command = [str(COMPOSE), *files, "--project-name", self.project, "--env-file", str(self.env_file), *arguments]
        result = subprocess.run(
            command, env=self.environment, capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(arguments)} exited with {result.returncode}:\n{result.stderr[-4000:]}")
        return result

    @property
    def environment(self) -> dict[str, str]:
        """Compose's environment: the engine's address and nothing of the tests' own settings, which would win
        over the .env file (Compose takes the shell's variables first)."""
        keep = ("PATH", "HOME", "DOCKER_HOST", "DOCKER_CONFIG")
        return {**{name: self.engine.environment[name] for name in keep}, "COMPOSE_BAKE": "false"}

    def containers(self, service: str | None = None) -> list[dict]:
        """`docker compose ps --all` as dicts (Service, Name, State, Health, ExitCode, ...)."""
        output = self.compose("ps", "--all", "--format", "json", *([service] if service else [])).stdout
        return [json.loads(line) for line in output.splitlines() if line.strip()]

    def sql(self, statement: str) -> list[list[str]]:
        """Rows of a statement run by the mysql client in the mysql container, as the root user."""
        output = self.compose(
            "exec",
            "-T",
            "mysql",
            "mysql",
            "--user=root",
            f"--password={self.values['MYSQL_ROOT_PASSWORD']}",
            "--batch",
            "--skip-column-names",
            self.values["MYSQL_DATABASE"],
            "--execute",
            statement,
        ).stdout
        return [line.split("\t") for line in output.splitlines()]

    def web_servers_up(self) -> set[str]:
        """The web replicas HAProxy's health checks find UP."""
        return web_servers_up(self.url, (self.values["STATS_USER"], self.values["STATS_PASSWORD"]))

    def runs(self) -> tuple[Counter, Counter]:
        """Per computation, how many runs the workers' logs say started and ended."""
        return runs_in(self.compose("logs", "--no-color", "worker", "worker-instant").stdout)

    def up(self, *arguments: str) -> float:
        """`up --detach --wait` (the given scale or services); returns the seconds until healthy."""
        started = time.monotonic()
        self.compose("up", "--detach", "--wait", "--wait-timeout", "240", *arguments)
        return time.monotonic() - started


def env_file(directory: Path, values: dict[str, str]) -> Path:
    path = directory / ".env"
    path.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    path.chmod(0o600)
    return path
