"""Compose, validated without a Docker engine: the specification's schema, a Compose linter, hadolint, HAProxy's
own check, and parity with the local stack, so that Compose runs exactly what the stack tests exercise."""

import functools
import json
import os
import re
import secrets
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from tasks.queues import QUEUES
from tools.stack import PROCESSES, ROOT, START

COMPOSE_FILE = ROOT / "compose" / "compose.yaml"
DOCKERFILE = ROOT / "compose" / "Dockerfile"
DCLINT = ROOT / ".tools" / "node_modules" / ".bin" / "dclint"
COMPOSE = ROOT / ".tools" / "compose" / "compose" / "docker-compose"
PRODUCTION_SECRET = "x" * 50
# Set by the start scripts from others, never by a person.
DERIVED = {
    "WEB_MAXCONN",
    "HAPROXY_SERVER_TIMEOUT",
    "HAPROXY_CHECK_HOST",
    "WEB_PORT",
    "SIGN_IN_LIMIT",
    "SIGN_IN_PERIOD_SECONDS",
    "WEB_DRAIN_FILE",
    "WEB_MAX_REQUESTS_DELTA",
    "TMPDIR",
}
# Where containers differ from one machine: Compose gives these values of its own (service names, Docker's ranges).
CONTAINER_ADDRESSES = {"TRUSTED_PROXIES", "DATABASE_URL", "REDIS_URL", "CACHE_URL"}
# Images of others, configured by their own variables.
THIRD_PARTY = {"mysql", "redis", "cache", "prometheus", "node-exporter"}
# Ordering rules we do not follow: services read in the order they start (data, migrate, app, proxy), and the
# x- anchors come first because the services use them.
DCLINT_SKIPPED_RULES = ["services-alphabetical-order", "service-keys-order", "top-level-properties-order"]


def run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(part) for part in command], capture_output=True, text=True, check=False, cwd=ROOT)


def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def env_example() -> dict[str, str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def documented_in_env_example() -> set[str]:
    """Every variable .env.example names, set or shown commented out (`#NAME=example`)."""
    return set(re.findall(r"^#?([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.MULTILINE))


def deployment_environment() -> dict[str, str]:
    """What an operator's .env holds: .env.example, its empty secrets filled in."""
    values = env_example()
    for name in (
        "SECRET_KEY",
        "MYSQL_PASSWORD",
        "MYSQL_ROOT_PASSWORD",
        "ADMIN_PASSWORD",
        "FLOWER_PASSWORD",
        "STATS_PASSWORD",
    ):
        values[name] = secrets.token_urlsafe(24)
    return values


def service_environment(name: str) -> dict[str, str]:
    """A service's environment as Compose itself resolves it (`docker compose config`), with .env.example's values."""
    with tempfile.TemporaryDirectory() as directory:
        env_file = Path(directory) / ".env"
        env_file.write_text("".join(f"{key}={value}\n" for key, value in deployment_environment().items()))
        result = subprocess.run(
            [COMPOSE, "--file", COMPOSE_FILE, "--env-file", env_file, "config", "--format", "json"],
            capture_output=True,
            text=True,
            check=True,
            env={"PATH": os.environ["PATH"]},
        )
    return json.loads(result.stdout)["services"][name]["environment"]


@functools.cache
def settings_defaults() -> dict[str, object]:
    """{NAME: value} for every variable dashboard/settings.py reads, as its own reads left them (environs'
    env.dump()) with nothing set but a production secret."""
    return settings_reads({"SECRET_KEY": PRODUCTION_SECRET})


def settings_reads(environment: dict[str, str]) -> dict[str, object]:
    """What the settings read (env.dump()) with `environment` and no .env file."""
    program = (
        "import json, environs; environs.Env.read_env = lambda *args, **kwargs: False; "
        "import dashboard.settings as settings; print(json.dumps(settings.env.dump(), default=str))"
    )
    result = subprocess.run(
        [ROOT / ".venv" / "bin" / "python", "-c", program],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "dashboard.settings", **environment},
    )
    return json.loads(result.stdout)


def start_script_defaults() -> dict[str, str]:
    """{NAME: value} for every variable compose/start/defaults.sh gives a default, with nothing set."""
    names = re.findall(r'^export ([A-Z][A-Z0-9_]*)="\$\{', (START / "defaults.sh").read_text(), re.MULTILINE)
    program = f"source {START / 'defaults.sh'}; " + "; ".join(f'printf "%s=%s\\n" {name} "${name}"' for name in names)
    result = subprocess.run(
        ["bash", "-c", program], capture_output=True, text=True, check=True, env={"PATH": os.environ["PATH"]}
    )
    return dict(line.split("=", 1) for line in result.stdout.splitlines())


def compose_defaults() -> dict[str, str]:
    """{NAME: default} for every ${NAME:-default} in compose/compose.yaml (innermost, where they nest)."""
    return dict(re.findall(r"\$\{([A-Z][A-Z0-9_]*):-([^}$]*)\}", COMPOSE_FILE.read_text()))


def variables_read_by_scripts() -> set[str]:
    """Variables the start scripts, HAProxy's configuration and the health checks read."""
    names: set[str] = set()
    for path in [*START.iterdir(), ROOT / "haproxy" / "haproxy.cfg"]:
        text = path.read_text()
        names |= set(re.findall(r"\$\{!?([A-Z][A-Z0-9_]*)", text))
        names |= set(re.findall(r"(?:require_password|defined\()\s*([A-Z][A-Z0-9_]*)", text))
    healthcheck = (ROOT / "compose" / "healthcheck.py").read_text()
    names |= set(re.findall(r"environ\.get\(['\"]([A-Z][A-Z0-9_]*)", healthcheck))
    return {name for name in names if not name.startswith("BASH_")}


def variables_required_by_scripts(script: str) -> set[str]:
    text = (START / script).read_text()
    return set(re.findall(r"require_password ([A-Z_]+)", text)) | set(
        re.findall(r"\[\[ -n \$\{([A-Z_]+):-\} \]\] \|\| die", text)
    )


def variables_compose_must_set() -> set[str]:
    """The settings' variables whose defaults only serve a development machine (localhost, the development
    secret), so a deployment that leaves them out would run against nothing or with a known secret."""
    loopback = {name for name, value in settings_defaults().items() if re.search(r"127\.0\.0\.1|localhost", str(value))}
    return loopback | {"SECRET_KEY"}


def drift(document: dict) -> list[str]:
    """Where Compose and the local stack disagree: commands the stack tests do not run, variables nobody
    reads, required variables left out."""
    problems = []
    scripts = {f"compose/start/{name}" for name in {*PROCESSES.values(), "migrate"}}
    known = set(settings_defaults()) | variables_read_by_scripts()
    must_set = variables_compose_must_set()
    for name, service in document["services"].items():
        if name in THIRD_PARTY:
            continue
        command = service.get("command", [])
        script = command[0].removeprefix("/app/") if command else None
        if len(command) != 1 or script not in scripts:
            problems.append(f"{name}: command {command} is not one of the start scripts {sorted(scripts)}")
            continue
        variables = set(service.get("environment", {}))
        problems += [f"{name}: sets {variable}, which nothing reads" for variable in sorted(variables - known)]
        needed = variables_required_by_scripts(Path(script).name)
        if Path(script).name != "haproxy":
            needed |= must_set
        problems += [f"{name}: does not set {variable}" for variable in sorted(needed - variables)]
    return problems


def test_the_compose_file_follows_the_compose_specification():
    result = run(ROOT / ".venv" / "bin" / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_compose_file_passes_the_compose_linter():
    assert DCLINT.exists(), "dclint is missing: run `tools/setup --test` (make test does)"
    skipped = [argument for rule in DCLINT_SKIPPED_RULES for argument in ("--disable-rule", rule)]
    result = run(DCLINT, COMPOSE_FILE, "--max-warnings", "0", "--color", "false", *skipped)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dockerfile_passes_hadolint():
    result = run(ROOT / ".venv" / "bin" / "hadolint", "--failure-threshold", "info", "--no-color", DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_haproxy_accepts_its_configuration_with_composes_environment():
    environment = {"PATH": f"/usr/sbin:{os.environ['PATH']}", **service_environment("haproxy")}
    result = subprocess.run(
        [START / "haproxy", "--check"], env=environment, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    # Outside Docker the service names do not resolve; HAProxy resolves them at run time (init-addr none).
    other = [line for line in result.stderr.splitlines() if "WARNING" in line and "could not resolve" not in line]
    assert other == [] and "ALERT" not in result.stderr


def test_compose_runs_the_start_scripts_the_stack_tests_run_with_the_variables_they_read():
    assert drift(compose()) == []


def test_every_declared_queue_has_its_worker_service_with_its_concurrency():
    """tasks/queues.py declares the queues; Compose (and the stack file, held to it) has a worker service for each:
    `worker` for the last, which takes the rest, and `worker-<queue>` for the others."""
    services = compose()["services"]
    workers = {name for name, service in services.items() if service.get("command") == ["compose/start/worker"]}
    assert workers == {"worker" if queue is QUEUES[-1] else f"worker-{queue.name}" for queue in QUEUES}
    for queue in QUEUES:
        environment = services["worker" if queue is QUEUES[-1] else f"worker-{queue.name}"]["environment"]
        assert (environment["WORKER_NAME"], environment["WORKER_QUEUES"]) == (queue.name, queue.name)
        if queue.concurrency:
            assert re.fullmatch(rf"\$\{{[A-Z_]+:-{queue.concurrency}\}}", environment["WORKER_CONCURRENCY"])


def test_a_command_or_variable_the_stack_does_not_know_is_reported():
    document = compose()
    document["services"]["worker"]["command"] = ["celery", "--app", "tasks", "worker"]
    document["services"]["web"]["environment"]["WEB_WORKERS"] = "4"
    del document["services"]["flower"]["environment"]["REDIS_URL"]
    del document["services"]["haproxy"]["environment"]["STATS_PASSWORD"]
    problems = drift(document)
    assert any(problem.startswith("worker: command") for problem in problems)
    assert "web: sets WEB_WORKERS, which nothing reads" in problems
    assert "flower: does not set REDIS_URL" in problems
    assert "haproxy: does not set STATS_PASSWORD" in problems


def test_every_variable_is_documented_in_env_example():
    documented = documented_in_env_example()
    read = set(settings_defaults()) | variables_read_by_scripts()
    assert read - DERIVED - documented == set()


def test_the_image_installs_the_locked_environment_the_tests_use():
    dockerfile = DOCKERFILE.read_text()
    assert "COPY pyproject.toml uv.lock ./" in dockerfile
    assert re.search(r"uv sync --locked --no-dev", dockerfile)
    setup = (ROOT / "tools" / "setup").read_text()
    assert re.search(r"uv\" sync --locked", setup)
    assert (ROOT / "uv.lock").read_text().startswith("version = 1"), "one lock file, written by uv"


@pytest.mark.parametrize("service", ["web", "worker", "flower", "migrate"])
def test_each_app_service_gets_the_same_settings_the_local_stack_gets(service):
    environment = service_environment(service)
    assert environment["DEBUG"] == "false"
    assert (
        environment["DATABASE_URL"].startswith("mysql://dashboard:")
        and "@mysql:3306/dashboard" in environment["DATABASE_URL"]
    )
    assert environment["REDIS_URL"] == "redis://redis:6379/0" and environment["CACHE_URL"] == "redis://cache:6379/0"


def test_prometheus_scrapes_only_what_the_monitoring_listener_serves():
    config = yaml.safe_load((ROOT / "compose" / "prometheus.yml").read_text())
    haproxy = (ROOT / "haproxy" / "haproxy.cfg").read_text().split("frontend monitoring", 1)[1].split("\nbackend", 1)[0]
    services = compose()["services"]
    assert services["prometheus"]["profiles"] == services["node-exporter"]["profiles"] == ["monitoring"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"dashboard", "haproxy", "flower", "node"}
    for name in ("dashboard", "haproxy", "flower"):
        job = jobs[name]
        targets = job.get("static_configs") or [
            {"targets": [f"{each['names'][0]}:{each['port']}"]} for each in job["dns_sd_configs"]
        ]
        assert targets == [{"targets": ["haproxy:8404"]}], name
        assert job["metrics_path"] in haproxy, "the monitoring listener serves it"
    # The node exporter's own port, on the internal network only.
    assert jobs["node"]["dns_sd_configs"] == [{"names": ["node-exporter"], "type": "A", "port": 9100}]
    assert "ports" not in services["node-exporter"]
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    assert {"source": "prometheus-alerts", "target": "/etc/prometheus/alerts.yml"} in services["prometheus"]["configs"]
    assert "HAPROXY_MONITOR_BIND: 0.0.0.0:8404" in (ROOT / "compose" / "compose.yaml").read_text()


def test_env_example_states_the_settings_own_defaults():
    """.env.example's values, given to the settings, change nothing: each is the default settings.py applies."""
    example = {name: value for name, value in env_example().items() if name in settings_defaults()}
    read = settings_reads({**example, "SECRET_KEY": PRODUCTION_SECRET})
    defaults = settings_defaults()
    assert {name: read[name] for name in read if read[name] != defaults[name]} == {}
    assert set(defaults) - DERIVED - documented_in_env_example() == set()


def test_env_example_states_the_start_scripts_and_composes_own_defaults():
    example = env_example()
    scripts = start_script_defaults()
    assert {name: value for name, value in scripts.items() if example.get(name) != value} == {}
    own = {name: value for name, value in compose_defaults().items() if name not in CONTAINER_ADDRESSES}
    assert {name: value for name, value in own.items() if example.get(name) != value} == {}


def test_compose_restates_no_default_but_container_addresses():
    """A variable read by the settings or a start script gets its default there, never again in compose.yaml."""
    read_elsewhere = set(settings_defaults()) | set(start_script_defaults())
    assert set(compose_defaults()) & read_elsewhere <= CONTAINER_ADDRESSES


def test_the_external_servers_file_leaves_no_service_waiting_for_a_bundled_one():
    """compose/external.yaml over the main file: a valid project in which no service depends on the bundled
    mysql, redis or cache (a service added to the main file and forgotten here fails)."""
    with tempfile.TemporaryDirectory() as directory:
        env_file = Path(directory) / ".env"
        env_file.write_text("".join(f"{key}={value}\n" for key, value in deployment_environment().items()))
        result = subprocess.run(
            [
                COMPOSE,
                "--file",
                COMPOSE_FILE,
                "--file",
                COMPOSE_FILE.parent / "external.yaml",
                "--env-file",
                env_file,
                "config",
                "--format",
                "json",
            ],
            capture_output=True,
            text=True,
            check=False,
            env={"PATH": os.environ["PATH"]},
        )
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    assert {"web", "worker", "worker-instant", "beat", "flower", "migrate"} <= services.keys()
    waiting = {name: sorted(service.get("depends_on", {})) for name, service in services.items()}
    assert not any(set(needs) & {"mysql", "redis", "cache"} for needs in waiting.values()), waiting
