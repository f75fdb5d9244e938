"""Three hosts on one machine, joined as a Docker Swarm: each node a network namespace with an address of its own on a
bridge the test creates, its own hostname (UTS namespace) and its own dockerd (data root, exec root, socket, pid
file, containerd namespace, cgroup parent). The swarm's traffic stays on that bridge; nothing reaches the host's own
network but the test's requests to the nodes' addresses.

The nodes' data roots are kept between runs (under ~/.cache), so their images are pulled once; their swarm state,
containers, volumes and networks are not: every run makes a new swarm. A run killed before its teardown leaves
namespaces, a bridge, mounts and processes: the next run removes them before it starts (`recover`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.containers.engine import CACHE, CGROUP_ROOT, run

HOME = CACHE / "swarm"
BRIDGE = "dashswarm0"
NETWORK = "10.214.0"  # .1 is the host's end of the bridge, .11, .12, .13 the nodes
# The swarm's overlay networks, apart from Docker's default 10.0.0.0/8 and from the host's.
OVERLAY_POOL = "10.217.0.0/16"
NODE_NAMES = ("node1", "node2", "node3")
FORWARD_RULE = ("--in-interface", BRIDGE, "--out-interface", BRIDGE, "--jump", "ACCEPT")


def _wait(condition, *, timeout: float, interval: float = 0.5, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout} s")
        time.sleep(interval)


def _alive(pid: int) -> bool:
    """Running, not a zombie: a killed process stays in /proc until its parent reaps it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@dataclass
class Node:
    name: str
    number: int

    @property
    def address(self) -> str:
        return f"{NETWORK}.1{self.number}"

    @property
    def namespace(self) -> str:
        return f"dashboard-swarm-{self.name}"

    @property
    def directory(self) -> Path:
        return HOME / self.name

    @property
    def socket(self) -> Path:
        return self.directory / "docker.sock"

    @property
    def cgroup(self) -> str:
        return f"dashboard-swarm-{self.name}"

    @property
    def environment(self) -> dict[str, str]:
        """The docker CLI's environment: this node's engine, and none of the tests' own settings, which `stack
        deploy` would take for the stack file's variables."""
        return {
            "PATH": os.environ.get("PATH", os.defpath),
            "HOME": os.environ.get("HOME", "/root"),
            "DOCKER_HOST": f"unix://{self.socket}",
            "DOCKER_CONFIG": str(self.directory / "config"),
        }

    def docker(
        self, *arguments: str | Path, check: bool = True, variables: dict[str, str] | None = None, **options: object
    ) -> subprocess.CompletedProcess[str]:
        """A docker command against this node's engine (with `variables` beside: `stack deploy` reads them)."""
        return run("docker", *arguments, check=check, env={**self.environment, **(variables or {})}, **options)

    def answers(self) -> bool:
        return self.socket.exists() and self.docker("version", check=False).returncode == 0

    # The network: a namespace, a veth into the bridge, an address.
    def plug(self) -> None:
        run("ip", "netns", "add", self.namespace)
        host_end = f"dsw-{self.name}"
        run("ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", self.namespace)
        run("ip", "link", "set", host_end, "master", BRIDGE, "up")
        for command in (
            ("addr", "add", f"{self.address}/24", "dev", "eth0"),
            ("link", "set", "eth0", "up"),
            ("link", "set", "lo", "up"),
        ):
            run("ip", "-n", self.namespace, *command)

    def start_engine(self, registry: str, timeout: float = 60) -> None:
        """dockerd in the node's network namespace and a UTS namespace of its own (the node's hostname)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        dockerd = [
            "dockerd",
            "--host",
            f"unix://{self.socket}",
            "--data-root",
            self.directory / "root",
            "--exec-root",
            self.directory / "exec",
            "--pidfile",
            self.directory / "dockerd.pid",
            "--storage-driver",
            "overlay2",
            "--bip",
            f"10.215.{self.number}.1/24",
            "--default-address-pool",
            f"base=10.216.{self.number}.0/24,size=26",
            "--containerd-namespace",
            self.namespace,
            "--containerd-plugins-namespace",
            f"{self.namespace}-plugins",
            "--cgroup-parent",
            f"/{self.cgroup}",
            "--insecure-registry",
            registry,
        ]
        command = " ".join(f"'{part}'" for part in dockerd)
        log = (self.directory / "dockerd.log").open("ab")
        subprocess.Popen(
            [
                "unshare",
                "--uts",
                "--",
                "sh",
                "-c",
                f"hostname {self.name} && exec nsenter --net=/var/run/netns/{self.namespace} {command}",
            ],
            stdout=log,
            stderr=log,
            start_new_session=True,
            env={**os.environ, "PATH": f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin"},
        )
        _wait(self.answers, timeout=timeout, what=f"{self.name}'s dockerd (log: {self.directory / 'dockerd.log'})")

    def dockerd_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            pid = int((self.directory / "dockerd.pid").read_text())
            if _alive(pid):
                return pid
        return None

    def processes(self) -> set[int]:
        """Every process of the node: its dockerd, containerd and their shims, its containers' (by cgroup and by
        network namespace)."""
        found = {pid for pid in [self.dockerd_pid()] if pid}
        for group in CGROUP_ROOT.glob(f"*/{self.cgroup}"):
            for procs in group.rglob("cgroup.procs"):
                with contextlib.suppress(OSError):
                    found |= {int(pid) for pid in procs.read_text().split() if _alive(int(pid))}
        namespace = Path("/var/run/netns") / self.namespace
        if namespace.exists():
            inode = namespace.stat().st_ino
            for process in Path("/proc").iterdir():
                if process.name.isdigit():
                    with contextlib.suppress(OSError):
                        if (process / "ns" / "net").stat().st_ino == inode and _alive(int(process.name)):
                            found.add(int(process.name))
        return found

    def power_cut(self) -> None:
        """Kills the node at once, as a power cut would: dockerd, containerd and every container, by SIGKILL."""
        while pids := self.processes():
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                # dockerd is a child of this process (start_engine): reaped here, or it stays a zombie.
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
            time.sleep(0.1)
        self._unmount()

    def ask_engine_to_stop(self) -> None:
        """TERM to dockerd, which stops its containers (each within its grace period) and then itself."""
        if pid := self.dockerd_pid():
            os.kill(pid, signal.SIGTERM)

    def stop_engine(self, timeout: float = 60) -> None:
        """A clean stop, waited for, then whatever is left killed."""
        self.ask_engine_to_stop()
        with contextlib.suppress(TimeoutError):
            _wait(lambda: self.dockerd_pid() is None, timeout=timeout, what=f"{self.name}'s dockerd to stop")
        self.power_cut()

    def _unmount(self) -> None:
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
        for path in sorted((each for each in mounts if each.startswith(str(self.directory))), key=len, reverse=True):
            run("umount", "--lazy", path, check=False)

    def forget_the_swarm(self) -> None:
        """Before a new swarm: no swarm state and no runtime state of an earlier run (images stay)."""
        for part in ("swarm", "network"):
            shutil.rmtree(self.directory / "root" / part, ignore_errors=True)
        shutil.rmtree(self.directory / "exec", ignore_errors=True)

    def unplug(self) -> None:
        # The veth first: a namespace deleted takes its end with it, but later (the kernel cleans up in the back).
        run("ip", "link", "delete", f"dsw-{self.name}", check=False)
        run("ip", "netns", "delete", self.namespace, check=False)
        for group in CGROUP_ROOT.glob(f"*/{self.cgroup}"):
            for directory in [*sorted(group.rglob("*/"), key=lambda path: len(path.parts), reverse=True), group]:
                with contextlib.suppress(OSError):
                    directory.rmdir()


class Cluster:
    """`with Cluster() as cluster:` three nodes, all managers (the loss of one keeps the Raft quorum), the first
    the leader at first."""

    def __init__(self) -> None:
        self.nodes = [Node(name, number) for number, name in enumerate(NODE_NAMES, start=1)]

    @property
    def registry(self) -> str:
        """The registry's address: on the second node, so that losing the first (the leader at first) keeps it."""
        return f"{self.nodes[1].address}:5000"

    def start(self) -> float:
        """Forms the swarm; returns the seconds it took."""
        started = time.monotonic()
        self.recover()
        run("ip", "link", "add", BRIDGE, "type", "bridge")
        run("ip", "addr", "add", f"{NETWORK}.1/24", "dev", BRIDGE)
        run("ip", "link", "set", BRIDGE, "up")
        # A dockerd of the host (the container tests' engine) sets the FORWARD policy to DROP and has bridged
        # traffic go through iptables: the nodes' traffic to each other must pass.
        run("iptables", "--insert", "FORWARD", "1", *FORWARD_RULE)
        for node in self.nodes:
            node.plug()
            node.forget_the_swarm()
            node.start_engine(self.registry)
            # An earlier run's containers, volumes (its passwords) and networks; images stay.
            node.docker("container", "prune", "--force")
            node.docker("volume", "prune", "--force")
        first, *others = self.nodes
        first.docker("swarm", "init", "--advertise-addr", first.address, "--default-addr-pool", OVERLAY_POOL)
        token = first.docker("swarm", "join-token", "--quiet", "manager").stdout.strip()
        for node in others:
            node.docker("swarm", "join", "--token", token, f"{first.address}:2377")
        return time.monotonic() - started

    def stop(self) -> None:
        # Every node asked at once: their containers' grace periods (a worker's warm shutdown) run side by side.
        for node in self.nodes:
            node.ask_engine_to_stop()
        for node in self.nodes:
            node.stop_engine()
        self.recover()

    def recover(self) -> None:
        """Removes what this or an earlier run left: processes, mounts, namespaces, the bridge."""
        for node in self.nodes:
            node.power_cut()
            node.unplug()
        run("ip", "link", "delete", BRIDGE, check=False)
        while run("iptables", "--delete", "FORWARD", *FORWARD_RULE, check=False).returncode == 0:
            pass

    def leftovers(self) -> list[str]:
        """What of the swarm is still on this machine (after `stop`, nothing): processes, namespaces, links, rules."""
        left = [f"{node.name}: process {pid}" for node in self.nodes for pid in sorted(node.processes())]
        namespaces = run("ip", "netns", "list").stdout
        left += [f"namespace {node.namespace}" for node in self.nodes if node.namespace in namespaces]
        listed = run("ip", "-o", "link", "show").stdout.splitlines()
        links = {line.split(":")[1].strip().split("@")[0] for line in listed}
        left += [f"link {name}" for name in (BRIDGE, *(f"dsw-{node.name}" for node in self.nodes)) if name in links]
        if run("iptables", "--check", "FORWARD", *FORWARD_RULE, check=False).returncode == 0:
            left.append("the FORWARD rule")
        return left

    def manager(self) -> Node:
        """A node that answers, to ask the swarm things."""
        return next(node for node in self.nodes if node.answers())

    def leader(self) -> Node | None:
        """The raft's leader; None while the managers elect one (a manager then answers `node ls` with an error)."""
        answer = self.manager().docker("node", "ls", "--format", "{{.Hostname}} {{.ManagerStatus}}", check=False)
        if answer.returncode != 0:
            return None
        name = next((line.split()[0] for line in answer.stdout.splitlines() if line.endswith("Leader")), None)
        return next((node for node in self.nodes if node.name == name), None)

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@contextlib.contextmanager
def cluster() -> Iterator[Cluster]:
    with Cluster() as made:
        yield made
