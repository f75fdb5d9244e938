"""compose/stack.yaml, the Swarm's stack file, kept in step with compose/compose.yaml: the same services, commands,
variables and health checks, with the differences a Swarm needs and nothing else (tests/swarm deploy it)."""

import subprocess

import yaml

from tools.stack import ROOT

from .test_compose import compose

STACK_FILE = ROOT / "compose" / "stack.yaml"
# Secrets are files in a Swarm: NAME_FILE in the stack file stands for NAME in compose.yaml.
SECRETS = {"SECRET_KEY", "ADMIN_PASSWORD", "FLOWER_PASSWORD", "STATS_PASSWORD", "PROXY_SECRET"}
MYSQL_SECRETS = {"MYSQL_PASSWORD", "MYSQL_ROOT_PASSWORD"}
# Where the stack differs on purpose (its header says why).
STACK_ONLY = {"DATABASE_PASSWORD_FILE"}
SWARM_VALUES = {"WEB_DNS_NAME": "tasks.web"}


def stack() -> dict:
    return yaml.safe_load(STACK_FILE.read_text())


def rendered() -> dict:
    """The stack file as `docker stack config` reads it (the docker CLI's own loader, no engine)."""
    result = subprocess.run(
        ["docker", "stack", "config", "--compose-file", STACK_FILE],
        capture_output=True,
        text=True,
        check=False,
        env={
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "IMAGE": "registry.example.com/dashboard:1",
            "ALLOWED_HOSTS": "dashboard.example.com",
            "DOCKER_HOST": "unix:///nonexistent",
        },
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def as_files(names: set[str]) -> set[str]:
    return {f"{name}_FILE" if name in SECRETS | MYSQL_SECRETS else name for name in names}


def test_docker_stack_deploy_reads_the_stack_file():
    services = rendered()["services"]
    assert set(services) == set(compose()["services"])


def test_every_service_runs_what_compose_runs_with_the_same_variables_and_health_checks():
    ours, theirs = stack()["services"], compose()["services"]
    for name, service in ours.items():
        expected = theirs[name]
        assert service.get("command") == expected.get("command"), name
        assert service.get("healthcheck", {}).get("test") == expected.get("healthcheck", {}).get("test") or (
            name == "mysql"  # the root password is a file here
        ), name
        variables = set(service.get("environment", {})) - STACK_ONLY
        assert variables == as_files(set(expected.get("environment", {}))), name
        for variable, value in SWARM_VALUES.items():
            if variable in variables:
                assert service["environment"][variable] == value


def test_no_secret_is_an_environment_value():
    for name, service in rendered()["services"].items():
        for variable, value in (service.get("environment") or {}).items():
            assert variable not in SECRETS | MYSQL_SECRETS | {"DATABASE_PASSWORD"}, (name, variable)
            assert not variable.endswith("_FILE") or str(value).startswith("/run/secrets/"), (name, variable)
            secret = str(value).removeprefix("/run/secrets/")
            if str(value).startswith("/run/secrets/"):
                granted = {each if isinstance(each, str) else each["source"] for each in service.get("secrets", [])}
                assert secret in granted, f"{name} reads {value} without the secret"


def test_a_swarm_needs_no_ipvs_and_every_node_answers():
    services = rendered()["services"]
    for name, service in services.items():
        assert service["deploy"]["endpoint_mode"] == "dnsrr", name
    haproxy = services["haproxy"]
    assert haproxy["deploy"]["mode"] == "global" and {port["mode"] for port in haproxy["ports"]} == {"host"}
    assert {services[name]["deploy"]["mode"] for name in ("worker", "worker-instant")} == {"global"}
    for name in ("mysql", "redis", "cache", "prometheus"):
        assert services[name]["deploy"]["placement"]["constraints"] == ["node.labels.dashboard.data == true"]
    web = services["web"]["deploy"]
    assert web["update_config"]["order"] == "start-first" and web["placement"]["preferences"] == [{"spread": "node.id"}]
