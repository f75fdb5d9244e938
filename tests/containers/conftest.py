"""The Compose deployment for real: the project's own compose/compose.yaml and Dockerfile, built and run on a
private Docker engine (fixtures.py) with stand-ins for the official base images; the engine is stopped at the end,
leaving no process, bridge or rule behind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .deployment import SCALE, Deployment, deployment_values, env_file, report
from .engine import Engine


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that start engines of their own run before the shared one starts (one engine at a time)."""
    items.sort(key=lambda item: not getattr(getattr(item, "module", None), "RUNS_BEFORE_THE_SHARED_ENGINE", False))


@pytest.fixture(scope="package")
def deployment(engine: Engine, app_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """The stack built and started as the README says, with three web replicas and two workers; stopped once the
    container tests are done, before any other test needs the machine."""
    values = deployment_values()
    deployment = Deployment(engine, env_file(tmp_path_factory.mktemp("compose"), values), values)
    # What an interrupted run left in the engine's state (its volumes hold another run's passwords).
    deployment.compose("--profile", "monitoring", "down", "--volumes", "--remove-orphans")
    try:
        healthy = deployment.up(*SCALE)
        report("deployment", healthy_seconds=round(healthy, 1))
        yield deployment
    finally:
        logs = deployment.compose("logs", "--no-color", "--timestamps", check=False).stdout
        (tmp_path_factory.getbasetemp() / "compose.log").write_text(logs)
        deployment.compose(
            "--profile", "monitoring", "down", "--volumes", "--remove-orphans", "--timeout", "20", check=False
        )
        # The images the upgrade replaced: the engine's state is kept between runs, not let grow.
        engine.docker("image", "prune", "--force", check=False)
