"""haproxy/haproxy.cfg is valid for HAProxy itself (`haproxy -c`), with the variables each deployment gives it."""

import secrets
import subprocess

import pytest

from compose.local.stack import START, Ports, Stack


def check(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The start script derives its variables, then `haproxy -c` checks the configuration with them."""
    return subprocess.run([START / "haproxy", "--check"], env=environment, capture_output=True, text=True, check=False)


@pytest.fixture
def local_environment() -> dict[str, str]:
    path = "/usr/sbin:/usr/bin:/bin"
    stack = Stack({"PATH": path, "STATS_USER": "stats", "STATS_PASSWORD": secrets.token_urlsafe(16)}, Ports())
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
