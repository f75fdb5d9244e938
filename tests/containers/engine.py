"""A private Docker engine for the container tests: its own socket, state and bridge, stopped at the end with the
machine's network as it found it.

dockerd adds a bridge, iptables chains and rules, and turns IP forwarding on, and leaves all of it behind when it
stops. The engine records the links, the iptables rules and the forwarding switch before it starts (in memory and in
a file), and puts them back after it stopped. A run killed before its teardown leaves that file behind, and
containers whose processes outlive their engine: the next start kills those (they are in a cgroup of ours) and
restores the network from the file before it reads it anew. Its images and build cache stay in a directory of their
own (under ~/.cache) between runs, so a second run builds nothing it built before.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "computation-dashboard"
# Docker's default ranges (172.17-31.x, 192.168.x) could meet a network of the host; these are ours alone.
BRIDGE = "10.213.255.1/24"
ADDRESS_POOL = "base=10.213.0.0/17,size=24"
FORWARDING = Path("/proc/sys/net/ipv4/ip_forward")
# Every container's processes go under this cgroup, so the engine can find the ones a killed run orphaned.
CGROUP_PARENT = "dashboard-tests"
CGROUP_ROOT = Path("/sys/fs/cgroup")
BUILTIN_CHAINS = {
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
}


class EngineUnavailable(RuntimeError):
    """No Docker engine can start here; the message says why and what to install."""


def run(*command: str | Path, check: bool = True, **options: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, check=False, **options)
    if check and result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(map(str, command))[:300]} exited with {result.returncode}:\n"
            f"{result.stdout[-2000:]}{result.stderr[-3000:]}"
        )
    return result


@dataclass
class NetworkState:
    """What dockerd changes in the host's network, read before it starts."""

    links: set[str] = field(default_factory=set)
    iptables: str = ""
    forwarding: str = "0"

    @classmethod
    def read(cls) -> NetworkState:
        return cls(links=_links(), iptables=run("iptables-save").stdout, forwarding=FORWARDING.read_text().strip())

    @classmethod
    def load(cls, path: Path) -> NetworkState:
        saved = json.loads(path.read_text())
        return cls(links=set(saved["links"]), iptables=saved["iptables"], forwarding=saved["forwarding"])

    def save(self, path: Path) -> None:
        saved = {"links": sorted(self.links), "iptables": self.iptables, "forwarding": self.forwarding}
        path.write_text(json.dumps(saved))

    def restore(self) -> None:
        for link in _links() - self.links:
            run("ip", "link", "delete", link, check=False)
        # Each table named is flushed and rebuilt as it was; a table that had no rules is named empty.
        saved = {section.split("\n", 1)[0] for section in self.iptables.split("*")[1:]}
        empty = "".join(
            f"*{table}\n" + "".join(f":{chain} ACCEPT [0:0]\n" for chain in chains) + "COMMIT\n"
            for table, chains in BUILTIN_CHAINS.items()
            if table not in saved
        )
        run("iptables-restore", input=self.iptables + empty)
        FORWARDING.write_text(self.forwarding)


def _links() -> set[str]:
    return {link["ifname"] for link in json.loads(run("ip", "-json", "link", "show").stdout)}


def _container_groups() -> list[Path]:
    return [*CGROUP_ROOT.glob(f"*/{CGROUP_PARENT}"), *CGROUP_ROOT.glob(CGROUP_PARENT)]


def container_processes() -> set[int]:
    """The processes in our containers' cgroups (cgroup v1 or v2), whether an engine still runs them or not."""
    return {
        int(pid)
        for group in _container_groups()
        for procs in group.rglob("cgroup.procs")
        for pid in procs.read_text().split()
    }


def kill_containers() -> int:
    """Kills the processes left in our containers' cgroups; returns how many there were."""
    groups = _container_groups()
    killed: set[int] = set()
    deadline = time.monotonic() + 10
    while pids := container_processes():
        if time.monotonic() > deadline:
            raise RuntimeError(f"container processes {sorted(pids)} survive SIGKILL")
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        killed |= pids
        time.sleep(0.1)
    # Deepest first: a cgroup directory goes only once it is empty of processes and children.
    for group in groups:
        for directory in [*sorted(group.rglob("*/"), key=lambda path: len(path.parts), reverse=True), group]:
            if directory.is_dir():
                with contextlib.suppress(OSError):
                    directory.rmdir()
    return len(killed)


class Engine:
    """`with Engine(run_dir) as engine:` a dockerd on its own socket; `engine.environment` points a docker or
    compose command at it."""

    def __init__(self, run_dir: Path, data_root: Path = CACHE / "docker"):
        self.run_dir = run_dir
        self.data_root = data_root
        self.socket = run_dir / "docker.sock"
        self.process: subprocess.Popen[bytes] | None = None
        self.network: NetworkState | None = None
        # The host's network as it was before an engine of ours first changed it; gone after a clean stop.
        self.network_file = data_root.parent / "network-before-engine.json"
        # In a fixed place, not the run's: a killed run leaves its containers' network namespaces mounted here.
        self.exec_root = data_root.parent / "exec"

    @property
    def environment(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": f"unix://{self.socket}", "DOCKER_CONFIG": str(self.run_dir / "config")}

    def start(self, timeout: float = 60) -> float:
        """Starts dockerd; returns the seconds it took to answer."""
        for tool in ("dockerd", "iptables-save", "ip"):
            if not shutil.which(tool, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin"):
                raise EngineUnavailable(f"{tool} is missing: `tools/setup --containers` installs docker.io")
        if os.geteuid() != 0:
            raise EngineUnavailable("a private dockerd needs root (its bridge and iptables rules)")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.data_root.mkdir(parents=True, exist_ok=True)
        if running := leftovers():
            raise EngineUnavailable("a Docker engine is running already; stop it first:\n" + "\n".join(running))
        self._recover()
        self.network = NetworkState.read()
        self.network.save(self.network_file)
        log = (self.run_dir / "dockerd.log").open("ab")
        started = time.monotonic()
        self.process = subprocess.Popen(
            [
                "dockerd",
                "--host",
                f"unix://{self.socket}",
                "--data-root",
                str(self.data_root),
                "--exec-root",
                str(self.exec_root),
                "--pidfile",
                str(self.run_dir / "dockerd.pid"),
                "--storage-driver",
                "overlay2",
                "--bip",
                BRIDGE,
                "--default-address-pool",
                ADDRESS_POOL,
                "--containerd-namespace",
                "dashboard-tests",
                "--containerd-plugins-namespace",
                "dashboard-tests-plugins",
                "--cgroup-parent",
                f"/{CGROUP_PARENT}",
            ],
            stdout=log,
            stderr=log,
            start_new_session=True,
            env={**os.environ, "PATH": f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin"},
        )
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._restore_network()
                tail = (self.run_dir / "dockerd.log").read_text(errors="replace")[-2000:]
                raise EngineUnavailable(f"dockerd exited with {self.process.returncode}:\n{tail}")
            if self.docker("version", check=False).returncode == 0:
                return time.monotonic() - started
            time.sleep(0.2)
        self.stop()
        raise EngineUnavailable(f"dockerd did not answer within {timeout} s (log: {self.run_dir / 'dockerd.log'})")

    def docker(self, *arguments: str | Path, check: bool = True, **options: object) -> subprocess.CompletedProcess[str]:
        return run("docker", *arguments, check=check, env=self.environment, **options)

    def stop(self) -> None:
        """Removes every container, stops dockerd, and gives the host its network back."""
        if self.process is None:
            return
        if self.process.poll() is None:
            containers = self.docker("ps", "--all", "--quiet", check=False).stdout.split()
            if containers:
                self.docker("rm", "--force", "--volumes", *containers, check=False)
            self.docker("network", "prune", "--force", check=False)
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        # containerd and its shims, started by dockerd in its session, end with it; anything left is killed.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        kill_containers()
        self._unmount()
        self._restore_network()
        self.process = None

    def _recover(self) -> None:
        """Undoes what a run killed before its teardown left: containers, the state mount, the network."""
        kill_containers()
        self._unmount()
        # Runtime state only (sockets, pid files that may name a process now gone or a zombie): none of it is reused.
        shutil.rmtree(self.exec_root, ignore_errors=True)
        if self.network_file.exists():
            NetworkState.load(self.network_file).restore()
            self.network_file.unlink()

    def _unmount(self) -> None:
        """dockerd bind-mounts its state directory on itself, and each network namespace under its exec root, and
        undoes them only when it stops cleanly."""
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
        ours = [path for path in mounts if path.startswith((str(self.data_root), str(self.exec_root)))]
        for path in sorted(ours, key=len, reverse=True):
            run("umount", "--lazy", path, check=False)

    def _restore_network(self) -> None:
        if self.network is not None:
            self.network.restore()
            self.network = None
            self.network_file.unlink(missing_ok=True)

    def __enter__(self) -> Engine:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def image_exists(engine: Engine, name: str) -> bool:
    return engine.docker("image", "inspect", name, check=False).returncode == 0


@contextlib.contextmanager
def running(run_dir: Path) -> Iterator[Engine]:
    engine = Engine(run_dir)
    engine.start()
    try:
        yield engine
    finally:
        engine.stop()


def leftovers(before: Sequence[str] = ()) -> list[str]:
    """Processes of a Docker engine still running (for a check that the tests left none)."""
    found = run("ps", "-eo", "pid=,stat=,args=", check=False).stdout.splitlines()
    return [
        line
        for line in found
        if re.search(r"dockerd|containerd|docker-proxy", line)
        and line.split()[1][0] != "Z"  # a zombie, which this machine's init may be slow to reap, runs nothing
        and line not in before
    ]
