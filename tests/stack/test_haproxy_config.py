"""haproxy/haproxy.cfg is valid for HAProxy itself (`haproxy -c`), with the variables each deployment gives it."""

import secrets
import subprocess

import pytest
import requests

from tests.helpers import wait_for
from tools.ports import Ports, free_ports
from tools.stack import ROOT, START, VENV_BIN, Stack


def check(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The start script derives its variables, then `haproxy -c` checks the configuration with them."""
    return subprocess.run([START / "haproxy", "--check"], env=environment, capture_output=True, text=True, check=False)


@pytest.fixture
def local_environment() -> dict[str, str]:
    path = "/usr/sbin:/usr/bin:/bin"
    credentials = {
        "STATS_USER": "stats",
        "STATS_PASSWORD": secrets.token_urlsafe(16),
        "FLOWER_USER": "flower",
        "FLOWER_PASSWORD": secrets.token_urlsafe(16),
    }
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


def test_passwords_may_come_from_files_as_docker_secrets(local_environment, tmp_path):
    """STATS_PASSWORD_FILE and the like name a file that holds the password (a Docker secret): the start script
    reads it, and a file it cannot read stops it with the reason."""
    environment = {key: value for key, value in local_environment.items() if not key.endswith("_PASSWORD")}
    for name in ("STATS_PASSWORD", "FLOWER_PASSWORD"):
        (tmp_path / name).write_text(secrets.token_urlsafe(16) + "\n")
        environment[f"{name}_FILE"] = str(tmp_path / name)
    result = check(environment)
    assert result.returncode == 0 and "Configuration file is valid" in result.stdout, result.stderr
    missing = check({**environment, "STATS_PASSWORD_FILE": str(tmp_path / "nowhere")})
    assert missing.returncode == 1 and f"STATS_PASSWORD_FILE names {tmp_path / 'nowhere'}" in missing.stderr


def test_the_settings_read_their_secrets_from_files_too(tmp_path):
    """For what no start script starts (a health check, `manage.py` in a container): SECRET_KEY_FILE and
    DATABASE_PASSWORD_FILE are read by the settings themselves."""
    key, password = tmp_path / "secret_key", tmp_path / "database_password"
    key.write_text("k" * 50 + "\n")
    password.write_text("a database password\n")
    program = (
        "from django.conf import settings; import django; django.setup(); "
        "print(len(settings.SECRET_KEY), settings.DATABASES['default']['PASSWORD'])"
    )
    result = subprocess.run(
        [str(VENV_BIN / "python"), "-c", program],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_SETTINGS_MODULE": "dashboard.settings",
            "SECRET_KEY_FILE": str(key),
            "DATABASE_PASSWORD_FILE": str(password),
            "DATABASE_URL": "mysql://dashboard@db.example.com/dashboard",
        },
    )
    assert result.returncode == 0 and result.stdout.split(maxsplit=1) == ["50", "a database password\n"], result.stderr
