"""The alerting rules (compose/alerts.yml) and Prometheus' configuration, checked by Prometheus' own promtool: the
rules fire on the series written for each (alerts.test.yml) and stay quiet on the others.

promtool runs in the Prometheus stand-in's root file system (tests/containers/standins.py), the very release the
container and Swarm tests run, chrooted: no Docker engine is needed, and nothing is installed on this machine.
"""

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from tests.containers import standins
from tools.stack import ROOT

COMPOSE = ROOT / "compose"
TESTS = Path(__file__).parent / "alerts.test.yml"


@pytest.fixture(scope="module")
def promtool():
    """promtool(*arguments, files={name: text}) runs promtool in a directory of its own holding `files`."""
    root = standins.STANDINS["prometheus"].root()

    def run(*arguments: str, files: dict[str, str]) -> subprocess.CompletedProcess[str]:
        with tempfile.TemporaryDirectory(dir=root / "tmp") as directory:
            for name, text in files.items():
                (Path(directory) / name).write_text(text)
            inside = "/" + str(Path(directory).relative_to(root))
            command = ["chroot", str(root), "sh", "-c", f'cd "{inside}" && exec promtool "$@"', "sh", *arguments]
            return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)

    assert shutil.which("chroot")
    return run


def rules_without_descriptions() -> str:
    """The rules with their descriptions left out: plain text, which the tests would only repeat."""
    document = yaml.safe_load((COMPOSE / "alerts.yml").read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            rule["annotations"].pop("description")
    return yaml.safe_dump(document)


def test_the_rules_and_the_configuration_are_valid(promtool):
    rules = promtool("check", "rules", "alerts.yml", files={"alerts.yml": (COMPOSE / "alerts.yml").read_text()})
    assert rules.returncode == 0, rules.stdout + rules.stderr
    config = promtool(
        "check",
        "config",
        "--syntax-only",
        "prometheus.yml",
        files={"prometheus.yml": (COMPOSE / "prometheus.yml").read_text()},
    )
    assert config.returncode == 0, config.stdout + config.stderr


def test_every_alert_fires_on_its_series_and_only_then(promtool):
    files = {"alerts.yml": rules_without_descriptions(), "alerts.test.yml": TESTS.read_text()}
    result = promtool("test", "rules", "alerts.test.yml", files=files)
    assert result.returncode == 0, result.stdout + result.stderr
    tested = {
        case["alertname"] for test in yaml.safe_load(TESTS.read_text())["tests"] for case in test["alert_rule_test"]
    }
    rules = {
        rule["alert"]
        for group in yaml.safe_load((COMPOSE / "alerts.yml").read_text())["groups"]
        for rule in group["rules"]
    }
    assert tested == rules, "every rule has a test"
    fired = {
        case["alertname"]
        for test in yaml.safe_load(TESTS.read_text())["tests"]
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    assert fired == rules, "every rule is seen firing"
