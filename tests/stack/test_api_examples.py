"""The README's API examples, run exactly as printed (the blocks after `<!-- api-example: … -->`) against the
running stack, with DASHBOARD and TOKEN set as the README says: each submits, waits for the result by polling its
address, and lists the failures."""

import json
import os
import re
import subprocess
import sys

import pytest

from tests.helpers import api_token
from tools.stack import ROOT, Stack

pytestmark = pytest.mark.stack
FAILED = """
from django.contrib.auth import get_user_model
from tasks.models import Computation
reader = get_user_model().objects.get(username="reader")
Computation.objects.create(operation="add", inputs={"x": "1", "y": "2"}, status="failed", error="boom", owner=reader)
"""
EXAMPLE = re.compile(r"<!-- api-example: (\w+) -->\n```\w+\n(.*?)```", re.S)


def examples() -> dict[str, str]:
    return dict(EXAMPLE.findall((ROOT / "README.md").read_text()))


@pytest.fixture(scope="module")
def reader(stack: Stack) -> dict[str, str]:
    """The environment the README's examples run in, with a token of a person who has one failure."""
    token = api_token(stack, "reader")
    subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", FAILED],
        cwd=ROOT,
        env=stack.environment,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return {**os.environ, "DASHBOARD": stack.url, "TOKEN": token}


def test_the_readme_has_its_examples():
    assert set(examples()) == {"curl", "python", "workflow"}


def shell_example(name: str, environment: dict[str, str]) -> str:
    """What the README's shell example `name` printed, run as a person pastes it (stopping at its first error)."""
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", examples()[name]],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_the_curl_example(reader):
    ended, failures = documents(shell_example("curl", reader))
    assert ended["status"] == "succeeded" and ended["result"] == "45"
    assert [(row["operation"], row["error"]) for row in failures["items"]] == [("add", "boom")]


def test_the_python_example(reader):
    run = subprocess.run(
        [sys.executable, "-c", examples()["python"]],
        env=reader,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    ended, failure = run.stdout.splitlines()
    assert ended.split()[1:] == ["succeeded", "42"] and failure.split()[1:] == ["add", "boom"]


def test_the_workflow_example(reader):
    (workflow,) = documents(shell_example("workflow", reader))
    assert [(step["step"], step["status"], step["result"]) for step in workflow["steps"]] == [
        (1, "succeeded", "42"),
        (2, "succeeded", "2 × 3 × 7"),
        (3, "succeeded", "42.5"),
        (4, "succeeded", "84.5"),
    ]


def documents(text: str) -> list[dict]:
    """The JSON documents curl printed one after the other."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while at < len(text):
        document, at = decoder.raw_decode(text, at)
        found.append(document)
    return found
