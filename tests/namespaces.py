"""A network namespace of the tests' own: a machine of its own as far as the network goes, with nothing listening
on any port of its loopback. Needs root (ip netns)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path


class NetworkNamespace:
    def __init__(self, name: str):
        self.name = name
        self.path = Path("/var/run/netns") / name

    def create(self) -> None:
        subprocess.run(["ip", "netns", "add", self.name], check=True, capture_output=True)
        subprocess.run(["ip", "-n", self.name, "link", "set", "lo", "up"], check=True, capture_output=True)

    def delete(self) -> None:
        """Kills what still runs in it (a test that failed half-way), then removes it."""
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        subprocess.run(["ip", "netns", "delete", self.name], check=False, capture_output=True)

    @contextlib.contextmanager
    def inside(self) -> Iterator[None]:
        """Runs the block's network calls in the namespace: the calling thread joins it and comes back after. What
        the block connects or starts (a child process inherits it) stays in the namespace."""
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(self.path, os.O_RDONLY)
        try:
            os.setns(target, os.CLONE_NEWNET)
            yield
        finally:
            os.setns(home, os.CLONE_NEWNET)
            os.close(target)
            os.close(home)

    def processes(self) -> list[int]:
        """Every process whose network is this namespace."""
        inode = self.path.stat().st_ino
        found = []
        for process in Path("/proc").iterdir():
            if process.name.isdigit():
                with contextlib.suppress(OSError):
                    if (process / "ns" / "net").stat().st_ino == inode:
                        found.append(int(process.name))
        return found

    def wait_until_empty(self, timeout: float) -> list[int]:
        """The processes still in it after `timeout` seconds (none, as soon as it is empty)."""
        deadline = time.monotonic() + timeout
        while (left := self.processes()) and time.monotonic() < deadline:
            time.sleep(0.2)
        return left
