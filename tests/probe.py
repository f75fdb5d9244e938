"""The first checks of a deployment, through its one public URL, as an operator makes them after starting it: the
local stack's tests and the container tests run the same probe."""

import re
from collections.abc import Mapping

import requests

from tests.helpers import admin_session, wait_for

OPERATIONS = {
    "add": ({"x": "2", "y": "3"}, "5"),
    "subtract": ({"x": "7", "y": "10"}, "-3"),
    "multiply": ({"x": "6", "y": "7"}, "42"),
    "divide": ({"x": "1", "y": "8"}, "0.125"),
}


def probe(url: str, environment: Mapping[str, str]) -> None:
    """Each of the four operations posted as a form (CSRF, no script) runs to its result; Flower asks for its
    password and takes it; the admin lets its user in; metrics are not public."""
    session = requests.Session()
    assert session.get(f"{url}/", timeout=10).status_code == 200
    for operation, (inputs, expected) in OPERATIONS.items():
        data = {"csrfmiddlewaretoken": session.cookies["csrftoken"], "operation": operation, **inputs}
        answer = session.post(f"{url}/computations/", data=data, timeout=15)
        assert answer.history and answer.history[0].status_code == 303, answer.text[:500]
        pk = int(re.search(r"Computation #(\d+) is queued", answer.text).group(1))
        assert ended(url, pk)["result"] == expected, operation
    flower = f"{url}/flower/"
    assert requests.get(flower, timeout=10).status_code == 401
    assert requests.get(flower, auth=(environment["FLOWER_USER"], environment["FLOWER_PASSWORD"]), timeout=10).ok
    admin_session(url, environment)
    for internal in ("/metrics", "/flower/metrics", "/flower/healthcheck"):
        assert requests.get(f"{url}{internal}", timeout=10).status_code == 404, internal


def ended(url: str, pk: int, timeout: float = 60) -> dict:
    """The computation's JSON once it has ended."""

    def final() -> dict | None:
        data = requests.get(f"{url}/api/computations/{pk}", timeout=10).json()
        return data if data["status"] not in ("queued", "running") else None

    return wait_for(final, timeout=timeout)
