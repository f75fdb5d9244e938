"""A run killed before its teardown (the machine's session ended, CI timed out) leaves containers whose processes
outlive their engine, with their links, mounts and iptables rules. The next engine undoes all of it before it starts.

This module runs before the shared engine of the deployment tests starts (conftest orders it first): it needs the
machine to itself.
"""

import os
import signal
import subprocess
from pathlib import Path

from . import standins
from .engine import Engine, NetworkState, container_processes, leftovers

RUNS_BEFORE_THE_SHARED_ENGINE = True


def docker_links() -> set[str]:
    return {link for link in NetworkState.read().links if link.startswith(("docker0", "br-", "veth"))}


def test_an_engine_undoes_what_a_killed_run_left(tmp_path: Path):
    before = docker_links()
    killed = Engine(tmp_path / "killed")
    killed.start()
    redis = standins.STANDINS["redis"]
    redis.load(killed)
    killed.docker("network", "create", "killed-run")
    for name, network in (("on-a-network", "killed-run"), ("on-the-bridge", "bridge")):
        killed.docker("run", "--detach", "--name", name, "--network", network, redis.image)
    # What ending a session does: every process of the engine killed at once, nothing torn down.
    for line in leftovers():
        os.kill(int(line.split()[0]), signal.SIGKILL)
    left = docker_links() - before
    assert len([link for link in left if link.startswith("veth")]) == 2, left
    assert container_processes(), "the containers outlived their engine"
    assert "DOCKER" in subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout

    engine = Engine(tmp_path / "next")
    engine.start()
    try:
        # Its bridges, made again for the networks its state holds; none of the dead containers' links.
        assert not [link for link in docker_links() - before if link.startswith("veth")]
        assert container_processes() == set()
        assert engine.docker("ps", "--quiet").stdout.split() == []
    finally:
        engine.docker("rm", "--force", "on-a-network", "on-the-bridge", check=False)
        engine.docker("network", "rm", "killed-run", check=False)
        engine.stop()
    assert docker_links() - before == set()
    assert "DOCKER" not in subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    assert not any(str(engine.exec_root) in line for line in Path("/proc/mounts").read_text().splitlines())
