"""/api/v1/ held to its own document by a fuzzer no one here wrote: schemathesis runs every operation of the
document the running stack serves (through HAProxy, uWSGI, the workers), with a token, in all its phases and with
all its checks (no server error, every answer matching the document, schema-violating input rejected, valid input
accepted), for a bounded number of examples."""

import json
import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import requests

from tests.helpers import api_token
from tools.stack import VENV_BIN, Stack

pytestmark = pytest.mark.stack
EXAMPLES = 25
# A request the document calls valid may still be refused for what a schema cannot say: a division by zero (422), a
# token over its limit (429), a full queue (503), an action on a computation in the wrong state (409), an id that
# is not there (404). The token is a person's, not an operator's (403 on the operators' operations): the fuzzer must
# not shut the stack's workers down.
CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "403", "404", "409", "422", "429", "503"]
"""


def test_schemathesis_finds_no_fault_against_the_running_stack(stack: Stack, tmp_path: Path):
    token = api_token(stack, "fuzzer")
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [
        str(VENV_BIN / "schemathesis"),
        "--config-file",
        str(config),
        "run",
        f"{stack.url}/api/v1/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        "all",
        "--max-examples",
        str(EXAMPLES),
        "--workers",
        "2",
        "--request-timeout",
        "20",
        "--seed",
        "31",
        "--report",
        "har",
        "--report-har-path",
        str(tmp_path / "requests.har"),
    ]
    try:
        run = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path, check=False)
    finally:
        _clear(stack, token)
    output = run.stdout + run.stderr
    summary = re.search(r"Test cases:\s*\n\s*(.+)", output)
    print(f"\nschemathesis: {summary.group(1) if summary else 'no summary'}; {_requests(tmp_path / 'requests.har')}")
    assert run.returncode == 0, output[-6000:]
    assert summary and " passed" in summary.group(1)
    tested = re.search(r"Tested: (\d+)", output)
    selected = re.search(r"Selected: (\d+)/(\d+)", output)
    assert tested and selected and tested.group(1) == selected.group(2), "every operation of the document"


def _requests(har: Path) -> str:
    """How many requests the run made, by status class."""
    if not har.exists():
        return "no record of its requests"
    entries = json.loads(har.read_text())["log"]["entries"]
    classes = Counter(f"{entry['response']['status'] // 100}xx" for entry in entries)
    return f"{len(entries):,} requests ({', '.join(f'{count:,} {name}' for name, count in sorted(classes.items()))})"


def _clear(stack: Stack, token: str) -> None:
    """What the fuzzer left for the next tests: its computations in flight cancelled, its schedules deleted."""
    headers = {"Authorization": f"Bearer {token}"}
    api = f"{stack.url}/api/v1"
    cancelled = requests.post(f"{api}/computations/cancel", json={"filter": {}}, headers=headers, timeout=60)
    assert cancelled.status_code == 200, cancelled.text
    for schedule in requests.get(f"{api}/schedules", headers=headers, timeout=30).json():
        requests.delete(f"{api}/schedules/{schedule['id']}", headers=headers, timeout=30)
