"""The whole topology on one machine, without Docker.

HAProxy in front of two uWSGI web replicas, a Celery worker and Flower, and the cache's own Redis, each started by
its compose/start/ script with the variables Compose gives it, so a test of this stack tests what Compose runs.
`make run` starts it (tools.run, on a database and a broker that tools.backends picks); tests/stack start it on free
ports with a database of their own.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from tasks.queues import QUEUES

from .ports import Ports
from .servers import Server, StackError, die_with_parent

ROOT = Path(__file__).resolve().parents[1]
START = ROOT / "compose" / "start"
VENV_BIN = ROOT / ".venv" / "bin"

# One worker per queue, as Compose runs them: the last queue's (which takes the rest) is "worker", the others are
# named after their queue. Each has its queue's concurrency when it declares one, else WORKER_CONCURRENCY.
WORKER_VARIABLES = {
    ("worker" if queue is QUEUES[-1] else queue.name): {
        "WORKER_NAME": queue.name,
        "WORKER_QUEUES": queue.name,
        **({"WORKER_CONCURRENCY": str(queue.concurrency)} if queue.concurrency else {}),
    }
    for queue in QUEUES
}
# Name → start script. Two replicas of the same web script; the workers of the same script.
PROCESSES = {
    "cache": "cache",
    "haproxy": "haproxy",
    "web1": "web",
    "web2": "web",
    **dict.fromkeys(WORKER_VARIABLES, "worker"),
    "beat": "beat",
    "flower": "flower",
}

type Output = Callable[[str, str], None]


def print_line(name: str, line: str) -> None:
    print(f"{name:>8} | {line}", flush=True)


class Stack:
    """Starts, watches and stops the processes; each runs in a process group of its own, so stopping one stops
    everything it started (uWSGI's workers, Celery's pool) and Ctrl-C in a terminal reaches only this launcher."""

    def __init__(self, environment: Mapping[str, str], ports: Ports | None = None, output: Output = print_line):
        self.ports = ports or Ports()
        self.output = output
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.servers: dict[str, Server] = {}
        # The stack's own temporary directory (0700), its processes' TMPDIR: what they keep there (a replica's drain
        # mark) is no other local user's to see or make, and goes when the stack stops. Made when a process starts.
        self.runtime = Path(tempfile.gettempdir()) / f"dashboard-stack-{secrets.token_hex(8)}"
        self.environment = {
            **environment,
            "PATH": f"{VENV_BIN}{os.pathsep}{environment.get('PATH', os.defpath)}",
            "PYTHONUNBUFFERED": "1",
            "TMPDIR": str(self.runtime),
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

    def start_server(self, name: str, server: Server) -> None:
        """A database or broker of the stack's own: started first (waiting until it answers), stopped last."""
        self.servers[name] = server
        server.start()
        assert server.process is not None
        self.processes[name] = server.process

    def run_once(self, *command: str) -> None:
        """A one-shot step (the migrate script, a management command); raises if it fails."""
        self._make_runtime()
        process = subprocess.Popen(
            command, cwd=ROOT, env=self.environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self._relay(Path(command[0]).name, process)
        if process.wait() != 0:
            raise StackError(
                f"{Path(command[0]).name} failed with exit status {process.returncode}: its output is above."
            )

    def start(self, *names: str) -> None:
        self._make_runtime()
        for name in names or PROCESSES:
            environment = dict(self.environment)
            if name.startswith("web"):
                environment["WEB_BIND"] = f"127.0.0.1:{self.ports.web[int(name[-1]) - 1]}"
            environment.update(WORKER_VARIABLES.get(name, {}))
            command = [str(START / PROCESSES[name])]
            self.processes[name] = process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=environment,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
            self._relay(name, process)

    def _make_runtime(self) -> None:
        """The runtime directory, unless it is there already, as this stack made it (after a stop, made again)."""
        try:
            self.runtime.mkdir(mode=0o700)
        except FileExistsError:
            found = self.runtime.stat()
            if found.st_uid != os.getuid() or found.st_mode & 0o077:
                raise StackError(f"{self.runtime} is not this stack's own: remove it and run again.") from None

    def start_dev(self) -> None:
        """Django's development server, a worker and beat, for `make dev`."""
        self._make_runtime()
        self.processes["web"] = subprocess.Popen(
            [str(VENV_BIN / "python"), "manage.py", "runserver", f"127.0.0.1:{self.ports.front}"],
            cwd=ROOT,
            env=self.environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        self._relay("web", self.processes["web"])
        self.start("cache", *WORKER_VARIABLES, "beat")

    def signal(self, name: str, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.processes[name].pid, signum)

    def signal_workers(self, signum: int) -> None:
        """To every worker (SIGSTOP holds every computation queued, SIGCONT lets them go)."""
        for name in WORKER_VARIABLES:
            self.signal(name, signum)

    def stop(self, *names: str, timeout: float = 20) -> None:
        """TERM to each process, as Docker sends it to a container's first one (which stops the rest in its own
        order), then KILL what is still there after `timeout` seconds; waits for every process to be gone. Without
        names: every process, and the stack's own servers once the rest are gone (a worker finishing its run
        still writes to the database)."""
        if names:
            self._stop(names, timeout)
        else:
            self._stop([name for name in reversed(self.processes) if name not in self.servers], timeout)
            self._stop(list(reversed(self.servers)), timeout)
            shutil.rmtree(self.runtime, ignore_errors=True)

    def _stop(self, names: Sequence[str], timeout: float) -> None:
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
            if name in self.servers:
                self.servers[name].stop()  # its runtime directory

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
                statuses = ", ".join(f"{name} with status {code}" for name, code in failed.items())
                raise StackError(f"Exited during start-up: {statuses}. The output above says why.")
            if self.servers_up() >= {"web/web1", "web/web2", "flower/flower"}:
                return time.monotonic() - started
            time.sleep(0.25)
        up = ", ".join(sorted(self.servers_up())) or "nothing"
        raise StackError(f"The stack was not ready within {timeout:.0f} s (up: {up}). The output above says why.")

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
