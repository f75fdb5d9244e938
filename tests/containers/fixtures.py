"""The private Docker engine and the project's image, for every test that needs them (the Compose deployment's,
the Swarm's): one engine and one build per run. Registered by the root conftest.py."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import standins
from .deployment import Deployment, deployment_values, env_file, report
from .engine import Engine, NetworkState, leftovers


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A private dockerd holding the stand-in base images; stopped at the end, and checked to have left nothing."""
    before = leftovers()
    engine = Engine(tmp_path_factory.mktemp("docker"))
    started = engine.start()
    links_before = set(engine.network.links)
    try:
        loading = time.monotonic()
        standins.load_all(engine)
        report("engine", started_seconds=round(started, 1), stand_ins_seconds=round(time.monotonic() - loading, 1))
        yield engine
    finally:
        engine.stop()
    assert leftovers(before) == [], "the engine's processes outlived it"
    added = NetworkState.read().links - links_before
    assert not [link for link in added if re.match(r"docker0|br-|veth", link)], added
    assert "DOCKER" not in subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    assert str(engine.data_root) not in Path("/proc/mounts").read_text(), "the engine's state is still mounted"


@pytest.fixture(scope="session")
def app_image(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The project's image, built as the README says (`docker compose build`) on the stand-in Python image; its
    name. The engine's build cache is kept between runs: a second run builds nothing."""
    values = deployment_values()
    builder = Deployment(engine, env_file(tmp_path_factory.mktemp("build"), values), values)
    started = time.monotonic()
    builder.compose("build", timeout=900)
    report("build", build_seconds=round(time.monotonic() - started, 1))
    return values.get("IMAGE") or "computation-dashboard:latest"
