"""haproxy/haproxy.cfg is valid for HAProxy itself (`haproxy -c`), with the variables each deployment gives it."""

import secrets
import subprocess

import pytest
import requests

from tests.helpers import wait_for
from tools.ports import Ports, free_ports
from tools.stack import START, Stack


def check(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The start script derives its variables, then `haproxy -c` checks the configuration with them."""
    return subprocess.run([START / "haproxy", "--check"], env=environment, capture_output=True, text=True, check=False)


@pytest.fixture
def local_environment() -> dict[str, str]:
    path = "/usr/sbin:/usr/bin:/bin"
    credentials = {
        "STATS_USER": "stats", "STATS_PASSWORD": secrets.token_urlsafe(16),
        "FLOWER_USER": "flower", "FLOWER_PASSWORD": secrets.token_urlsafe(16),
    }  # fmt: skip
    stack = Stack({"PATH": path, **credentials}, Ports())
    return stack.environment


def test_the_local_stacks_configuration_is_valid_without_a_warning(local_environment):
    result = check(local_environment)
    assert result.returncode == 0, result.stderr
    assert "Configuration file is valid" in result.stdout
    assert "WARNING" not in result.stderr and "ALERT" not in result.stderr


def test_a_missing_password_stops_haproxy_before_it_starts(local_environment):
    result = check({**local_environment, "STATS_PASSWORD": ""})
    assert result.returncode == 1 and "STATS_PASSWORD must be set" in result.stderr
    weak = check({**local_environment, "STATS_PASSWORD": "changeme"})
    assert weak.returncode == 1 and "at least 12 characters" in weak.stderr


def test_haproxy_answers_429_past_the_per_address_limit(stack):
    """A second HAProxy with the stack's configuration but a limit of 20 requests in 10 s, in front of the
    stack's replicas."""
    front, monitor = free_ports(2)
    environment = {
        **stack.environment,
        "HAPROXY_BIND": f"127.0.0.1:{front}",
        "HAPROXY_MONITOR_BIND": f"127.0.0.1:{monitor}",
        "HAPROXY_RATE_LIMIT": "20",
    }
    haproxy = subprocess.Popen(
        [START / "haproxy"], env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for(lambda: _status(f"http://127.0.0.1:{front}/healthz") == 200, timeout=20)
        answers = [requests.get(f"http://127.0.0.1:{front}/healthz", timeout=5) for _ in range(30)]
    finally:
        haproxy.terminate()
        haproxy.wait(timeout=20)
    codes = [answer.status_code for answer in answers]
    assert codes.count(429) >= 5 and set(codes) == {200, 429}
    refused = next(answer for answer in answers if answer.status_code == 429)
    assert refused.headers["Retry-After"] == "10"
    assert refused.headers["HX-Retarget"] == "#outage" and "Too many requests" in refused.text


def _status(url: str) -> int | None:
    try:
        return requests.get(url, timeout=2).status_code
    except requests.RequestException:
        return None
