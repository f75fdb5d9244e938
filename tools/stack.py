"""The whole topology on one machine, without Docker.

HAProxy in front of two uWSGI web replicas, a Celery worker and Flower, and the cache's own Redis, each started by
its compose/start/ script with the variables Compose gives it, so a test of this stack tests what Compose runs.
`make run` runs it in the foreground until Ctrl-C (`python -m tools.stack`); tests/stack start it on free
ports with a database of their own; `make dev` runs Django's development server and a worker instead.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import ctypes.util
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parents[1]
START = ROOT / "compose" / "start"
VENV_BIN = ROOT / ".venv" / "bin"
GENERATED_ENV = ROOT / "var" / "local.env"

# Name → start script. Two replicas of the same web script; two workers of the same script, one per queue
# (WORKER_VARIABLES), as Compose runs them.
PROCESSES = {
    "cache": "cache",
    "haproxy": "haproxy",
    "web1": "web",
    "web2": "web",
    "worker": "worker",
    "instant": "worker",
    "beat": "beat",
    "flower": "flower",
}
# The heavy worker has WORKER_CONCURRENCY processes; one process takes additions faster than a person submits them.
WORKER_VARIABLES = {
    "worker": {"WORKER_NAME": "heavy", "WORKER_QUEUES": "heavy"},
    "instant": {"WORKER_NAME": "instant", "WORKER_QUEUES": "instant", "WORKER_CONCURRENCY": "1"},
}

type Output = Callable[[str, str], None]
PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


@dataclass(frozen=True)
class Ports:
    front: int = 8000
    web: tuple[int, int] = (8001, 8002)
    flower: int = 5555
    monitor: int = 8404
    cache: int = 6380

    @classmethod
    def free(cls) -> Ports:
        front, web1, web2, flower, monitor, cache = free_ports(6)
        return cls(front=front, web=(web1, web2), flower=flower, monitor=monitor, cache=cache)


def free_ports(count: int) -> list[int]:
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def _die_with_parent() -> None:
    """In the child, before exec: TERM when the launcher dies, even by kill -9, so nothing is left behind.
    (Only a C call here: the child of a process with threads must not take Python's locks.)"""
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def print_line(name: str, line: str) -> None:
    print(f"{name:>8} | {line}", flush=True)


class Stack:
    """Starts, watches and stops the processes; each runs in a process group of its own, so stopping one stops
    everything it started (uWSGI's workers, Celery's pool) and Ctrl-C in a terminal reaches only this launcher."""

    def __init__(self, environment: Mapping[str, str], ports: Ports | None = None, output: Output = print_line):
        self.ports = ports or Ports()
        self.output = output
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.environment = {
            **environment,
            "PATH": f"{VENV_BIN}{os.pathsep}{environment.get('PATH', os.defpath)}",
            "PYTHONUNBUFFERED": "1",
            "HAPROXY_BIND": f"127.0.0.1:{self.ports.front}",
            "HAPROXY_MONITOR_BIND": f"127.0.0.1:{self.ports.monitor}",
            "WEB1_ADDRESS": f"127.0.0.1:{self.ports.web[0]}",
            "WEB2_ADDRESS": f"127.0.0.1:{self.ports.web[1]}",
            "FLOWER_BIND": f"127.0.0.1:{self.ports.flower}",
            "FLOWER_ADDRESS": f"127.0.0.1:{self.ports.flower}",
            "CACHE_BIND": f"127.0.0.1:{self.ports.cache}",
            "CACHE_URL": f"redis://127.0.0.1:{self.ports.cache}/0",
            # HAProxy reaches the replicas from 127.0.0.2, and they believe forwarded headers from it alone: a
            # client of 127.0.0.1 that reaches a replica directly is just itself.
            "HAPROXY_SOURCE_ADDRESS": "127.0.0.2",
            "TRUSTED_PROXIES": "127.0.0.2/32",
        }

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports.front}"

    def run_once(self, *command: str) -> None:
        """A one-shot step (the migrate script, a management command); raises if it fails."""
        process = subprocess.Popen(
            command, cwd=ROOT, env=self.environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self._relay(Path(command[0]).name, process)
        if process.wait() != 0:
            raise RuntimeError(f"{' '.join(command)} failed with exit status {process.returncode}")

    def start(self, *names: str) -> None:
        for name in names or PROCESSES:
            environment = dict(self.environment)
            if name.startswith("web"):
                environment["WEB_BIND"] = f"127.0.0.1:{self.ports.web[int(name[-1]) - 1]}"
            environment.update(WORKER_VARIABLES.get(name, {}))
            command = [str(START / PROCESSES[name])]
            self.processes[name] = process = subprocess.Popen(
                command, cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=_die_with_parent,
            )  # fmt: skip
            self._relay(name, process)

    def start_dev(self) -> None:
        """Django's development server, a worker and beat, for `make dev`."""
        self.processes["web"] = subprocess.Popen(
            [str(VENV_BIN / "python"), "manage.py", "runserver", f"127.0.0.1:{self.ports.front}"],
            cwd=ROOT, env=self.environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_die_with_parent,
        )  # fmt: skip
        self._relay("web", self.processes["web"])
        self.start("cache", "worker", "instant", "beat")

    def signal(self, name: str, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.processes[name].pid, signum)

    def signal_workers(self, signum: int) -> None:
        """To both workers (SIGSTOP holds every computation queued, SIGCONT lets them go)."""
        for name in WORKER_VARIABLES:
            self.signal(name, signum)

    def stop(self, *names: str, timeout: float = 20) -> None:
        """TERM to each process, as Docker sends it to a container's first one (which stops the rest in its own
        order), then KILL what is still there after `timeout` seconds; waits for every process to be gone."""
        names = names or tuple(reversed(self.processes))
        for name in names:
            with contextlib.suppress(ProcessLookupError):
                self.processes[name].send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name in names:
            process = self.processes[name]
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.output(name, f"still running {timeout:.0f} s after TERM: killed")
            self.signal(name, signal.SIGKILL)  # whatever is left of its group
            process.wait()

    def kill(self, name: str) -> None:
        """Kills a process and all it started at once, as a crash would."""
        self.signal(name, signal.SIGKILL)
        self.processes[name].wait()

    def exited(self) -> dict[str, int]:
        return {name: code for name, process in self.processes.items() if (code := process.poll()) is not None}

    def wait_until_ready(self, timeout: float = 90) -> float:
        """Until HAProxy sees both replicas and Flower up; returns the seconds it took."""
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if failed := self.exited():
                raise RuntimeError(f"exited during start-up: {failed}")
            if self.servers_up() >= {"web/web1", "web/web2", "flower/flower"}:
                return time.monotonic() - started
            time.sleep(0.25)
        raise TimeoutError(f"the stack was not ready within {timeout} s; servers up: {self.servers_up()}")

    def servers_up(self) -> set[str]:
        """Backend servers that HAProxy's health checks find UP, read from its stats page (CSV)."""
        try:
            rows = self.stats()
        except (OSError, urllib.error.URLError):
            return set()
        return {f"{row['# pxname']}/{row['svname']}" for row in rows if row.get("status") == "UP"}

    def stats(self) -> list[dict[str, str]]:
        credentials = f"{self.environment['STATS_USER']}:{self.environment['STATS_PASSWORD']}"
        request = urllib.request.Request(
            f"{self.url}/haproxy/stats;csv",
            headers={"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()},
        )
        with urllib.request.urlopen(request, timeout=2) as response:
            lines = response.read().decode().splitlines()
        header = lines[0].split(",")
        return [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]

    def _relay(self, name: str, process: subprocess.Popen[bytes]) -> None:
        def relay() -> None:
            assert process.stdout is not None
            for raw in process.stdout:
                self.output(name, raw.decode(errors="replace").rstrip())

        threading.Thread(target=relay, name=f"relay-{name}", daemon=True).start()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def local_environment() -> dict[str, str]:
    """The variables of `make run`: the real environment, over .env, over secrets generated once per checkout
    (var/local.env), so production mode runs here without a single default password."""
    if not GENERATED_ENV.exists():
        GENERATED_ENV.parent.mkdir(exist_ok=True)
        generated = {
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ADMIN_USERNAME": "admin",
            "ADMIN_PASSWORD": secrets.token_urlsafe(12),
            "FLOWER_USER": "flower",
            "FLOWER_PASSWORD": secrets.token_urlsafe(12),
            "STATS_USER": "stats",
            "STATS_PASSWORD": secrets.token_urlsafe(12),
        }
        GENERATED_ENV.write_text("".join(f"{key}={value}\n" for key, value in generated.items()))
        GENERATED_ENV.chmod(0o600)
    # Plain HTTP on loopback: cookies without the Secure flag, no redirect to https.
    values = {"HTTPS": "false", **dotenv_values(GENERATED_ENV), **dotenv_values(ROOT / ".env"), **os.environ}
    return {key: value for key, value in values.items() if value is not None}


def serve(stack: Stack, banner: list[str]) -> int:
    """Runs until Ctrl-C, TERM, or one of the processes ends; then stops them all. A worker that ends (a warm
    shutdown from the Workers page) is started again instead, as Compose restarts its container."""
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        for line in banner:
            print(line, flush=True)
        while not stopping.is_set():
            exited = stack.exited()
            for name in [name for name in exited if name in WORKER_VARIABLES]:
                stack.output(name, f"exited with status {exited.pop(name)}: starting it again")
                stack.start(name)
            if exited:
                break
            stopping.wait(0.5)
        if not stopping.is_set():
            print(f"stopping everything: {exited} exited", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        print("stopping...", flush=True)
        stack.stop()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dev", action="store_true", help="Django's development server and a worker, DEBUG on")
    dev = parser.parse_args().dev
    environment = local_environment()
    if dev:
        environment["DEBUG"] = "true"
    stack = Stack(environment)
    stack.run_once(str(VENV_BIN / "python"), "manage.py", "ensure_database")
    started = time.monotonic()
    try:
        stack.run_once(str(START / "migrate"))
        if dev:
            stack.start_dev()
        else:
            stack.start()
            stack.wait_until_ready()
    except BaseException:
        stack.stop()
        raise
    url, env = stack.url, stack.environment
    banner = [
        "",
        f"Ready in {time.monotonic() - started:.1f} s. Ctrl-C stops everything.",
        f"  Dashboard      {url}/",
    ]
    if not dev:
        banner += [
            f"  Admin          {url}/admin/          {env['ADMIN_USERNAME']} / {env['ADMIN_PASSWORD']}",
            f"  Flower         {url}/flower/         {env['FLOWER_USER']} / {env['FLOWER_PASSWORD']}",
            f"  HAProxy stats  {url}/haproxy/stats   {env['STATS_USER']} / {env['STATS_PASSWORD']}",
            f"  Credentials and the secret key are in {GENERATED_ENV.relative_to(ROOT)} (or your .env).",
            "",
        ]
    return serve(stack, banner)


if __name__ == "__main__":
    sys.exit(main())
