"""`make run`'s launcher on a machine where nothing listens: in a network namespace of the test's own, with a fresh
var/, it brings its own MariaDB and Redis, stops every process it started on Ctrl-C, and keeps the work for the next
start; and every failure before the stack is up is one or two lines that say what to do, never a traceback."""

import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.helpers import DashboardClient
from tests.namespaces import NetworkNamespace
from tests.probe import ended
from tools.servers import MariaDB
from tools.stack import ROOT, VENV_BIN

URL = "http://127.0.0.1:8000"  # the defaults of `make run`: every port is free in a namespace of its own


@pytest.fixture
def namespace() -> Iterator[NetworkNamespace]:
    namespace = NetworkNamespace(f"launcher-{uuid.uuid4().hex[:8]}")
    namespace.create()
    try:
        yield namespace
    finally:
        namespace.delete()


class Launcher:
    """`python -m tools.run --var VAR`, as `make run` starts it, inside `namespace`, with an environment that
    names no server; its output collected line by line."""

    def __init__(self, namespace: NetworkNamespace, var: Path):
        environment = {
            "PATH": f"{os.environ['PATH']}:/usr/sbin",
            "HOME": os.environ.get("HOME", "/root"),
            "LANG": "C.UTF-8",
        }
        with namespace.inside():
            self.process = subprocess.Popen(
                [str(VENV_BIN / "python"), "-m", "tools.run", "--var", str(var)],
                cwd=ROOT,
                env=environment,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        self.lines: list[str] = []
        threading.Thread(target=lambda: self.lines.extend(self.process.stdout), daemon=True).start()

    def banner(self, timeout: float = 180) -> str:
        """The lines from "Ready in" on, once it has printed them."""
        deadline = time.monotonic() + timeout
        while not any(line.startswith("Ready in") for line in self.lines):
            assert self.process.poll() is None, "".join(self.lines[-30:])
            assert time.monotonic() < deadline, f"not ready within {timeout} s:\n{''.join(self.lines[-30:])}"
            time.sleep(0.2)
        time.sleep(0.2)
        start = next(i for i, line in enumerate(self.lines) if line.startswith("Ready in"))
        return "".join(self.lines[start : start + 12])

    def interrupt(self) -> int:
        """Ctrl-C: SIGINT to the launcher alone; its exit status."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(60)

    def output(self, timeout: float = 60) -> tuple[int, str]:
        """For a launcher that must fail: its exit status and all it printed."""
        status = self.process.wait(timeout)
        time.sleep(0.1)
        return status, "".join(self.lines)


def test_a_bare_machine_gets_a_stack_with_its_own_servers_that_keeps_its_work(namespace, tmp_path):
    var = tmp_path / "var"
    first = Launcher(namespace, var)
    banner = first.banner()
    assert "a MariaDB of its own on 127.0.0.1:3307" in banner and "a Redis of its own on 127.0.0.1:6381" in banner
    with namespace.inside():
        client = DashboardClient(URL)
        pk = client.submitted_id(client.submit(operation="multiply", x="6", y="7"))
        assert pk is not None and ended(URL, pk)["result"] == "42"
    assert first.interrupt() == 0
    assert namespace.wait_until_empty(10) == [], "processes of the stack outlived Ctrl-C"
    # The data is the user's alone, and the servers' files are where they were.
    assert {(var / name).stat().st_mode & 0o777 for name in ("mariadb", "redis")} == {0o700}

    second = Launcher(namespace, var)
    assert "a MariaDB of its own" in second.banner()
    with namespace.inside():
        kept = requests.get(f"{URL}/api/computations/{pk}", timeout=10).json()
    assert (kept["status"], kept["result"]) == ("succeeded", "42")
    assert second.interrupt() == 0
    assert namespace.wait_until_empty(10) == []


def assert_told(status: int, output: str, *phrases: str) -> None:
    """Failed, with one or two lines that hold each phrase, and no traceback."""
    lines = output.strip().splitlines()
    assert status != 0 and "Traceback" not in output and 1 <= len(lines) <= 2, output
    for phrase in phrases:
        assert phrase in output, output


def test_a_port_taken_by_another_program_is_named_with_how_to_stop_it(namespace, tmp_path):
    with namespace.inside(), socket.create_server(("127.0.0.1", 8000)):
        status, output = Launcher(namespace, tmp_path / "var").output()
    assert_told(
        status,
        output,
        "Port 8000 of 127.0.0.1 (the dashboard (HAProxy)) is taken by",
        f"(pid {os.getpid()})",
        f"`kill {os.getpid()}`",
    )


def test_something_else_on_mysqls_port_is_not_taken_for_mysql(namespace, tmp_path):
    with namespace.inside(), socket.create_server(("127.0.0.1", 3306)):  # it accepts, and never speaks
        status, output = Launcher(namespace, tmp_path / "var").output()
    assert_told(
        status,
        output,
        "Port 3306 of 127.0.0.1 (MySQL's default) is taken by",
        f"(pid {os.getpid()}), which does not answer as MySQL",
        f"`kill {os.getpid()}`",
        "or set DATABASE_URL in .env to your MySQL",
    )


def test_a_database_that_refuses_the_credentials_says_which_to_give(namespace, tmp_path):
    server = MariaDB(tmp_path / "theirs", 3306, password="not-the-stacks-password")
    with namespace.inside():
        server.start()
    try:
        status, output = Launcher(namespace, tmp_path / "var").output()
    finally:
        server.stop()
    assert_told(
        status,
        output,
        "MySQL at 127.0.0.1:3306 refused user root",
        "Access denied",
        "set DATABASE_URL=mysql://USER:PASSWORD@127.0.0.1:3306/dashboard in .env",
    )


def test_a_full_disk_is_said_before_anything_starts(namespace, tmp_path):
    var = tmp_path / "var"
    var.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(var)], check=True)
    try:
        status, output = Launcher(namespace, var).output()
    finally:
        subprocess.run(["umount", str(var)], check=True)
    assert_told(status, output, f"MB are free on the disk of {var}", "needs 300 MB", f"`df -h {var}`")
    assert namespace.processes() == []


def test_setup_without_a_python_to_use_says_how_to_get_one(tmp_path):
    """tools/setup (the first step of `make run` and `make test`) on a PATH with no Python 3.12+ and no pyenv."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for tool in ("bash", "dirname"):
        (bin_ / tool).symlink_to(subprocess.check_output(["which", tool], text=True).strip())
    result = subprocess.run(
        [str(ROOT / "tools" / "setup")], env={"PATH": str(bin_), "HOME": str(tmp_path)}, capture_output=True, text=True
    )
    assert_told(
        result.returncode, result.stdout + result.stderr, "Python 3.12 or newer is needed", "PYTHON=/path/to/python3.12"
    )
