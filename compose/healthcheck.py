"""Health checks of the containers (compose/compose.yaml and the Dockerfile's HEALTHCHECK).

`python compose/healthcheck.py web|flower|worker|beat`: exit status 0 when healthy. Web and Flower answer their
health endpoint on their own address; a worker answers a Celery ping by its node name; beat's sweeps arrive.
"""

import os
import socket
import subprocess
import sys
import urllib.request


def _get(bind: str, path: str) -> bool:
    """GET on this container's own port (the one of an address such as 0.0.0.0:8000), naming a host Django serves,
    as HAProxy's checks do: a deployment's ALLOWED_HOSTS need not hold 127.0.0.1."""
    url = f"http://127.0.0.1:{bind.rsplit(':', 1)[1]}{path}"
    first = os.environ.get("ALLOWED_HOSTS", "127.0.0.1").split(",")[0].strip().lstrip(".")
    request = urllib.request.Request(url, headers={"Host": "127.0.0.1" if first in ("", "*") else first})
    with urllib.request.urlopen(request, timeout=3) as response:  # noqa: S310 (our own loopback port)
        return response.status == 200


def web() -> bool:
    return _get(os.environ.get("WEB_BIND", "0.0.0.0:8000"), "/healthz")


def flower() -> bool:
    return _get(os.environ.get("FLOWER_BIND", "0.0.0.0:5555"), "/flower/healthcheck")


def worker() -> bool:
    node = f"{os.environ.get('WORKER_NAME', 'worker')}@{socket.gethostname()}"
    command = ["celery", "--app", "tasks.celery", "inspect", "ping", "--destination", node, "--timeout", "5"]
    return subprocess.run(command, capture_output=True, check=False).returncode == 0  # noqa: S603


def beat() -> bool:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
    import django

    django.setup()
    from django.conf import settings

    from tasks.jobs import seconds_since_last_sweep

    age = seconds_since_last_sweep()
    return age is not None and age < 3 * settings.COMPUTATION_SWEEP_SECONDS + 30


if __name__ == "__main__":
    sys.path.insert(0, os.getcwd())
    checks = {"web": web, "flower": flower, "worker": worker, "beat": beat}
    try:
        healthy = checks[sys.argv[1]]()
    except Exception as error:  # any failure means unhealthy, said once
        print(f"unhealthy: {error}", file=sys.stderr)
        healthy = False
    sys.exit(0 if healthy else 1)
