import re
import time
import uuid
from collections.abc import Callable

import requests


def database_url(database: dict, name: str) -> str:
    """A DATABASE_URL for `name` on the server and with the credentials of Django's `database` settings."""
    credentials = f"{database['USER']}:{database['PASSWORD']}" if database["PASSWORD"] else database["USER"]
    return f"mysql://{credentials}@{database['HOST']}:{database['PORT'] or 3306}/{name}"


def wait_for(condition: Callable[[], object], *, timeout: float = 20, interval: float = 0.05) -> object:
    """Polls until `condition()` is truthy and returns it; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(interval)
    raise AssertionError(f"not true within {timeout} s: {condition.__doc__ or condition}")


class DashboardClient:
    """One person's browser against a stack's URL, over HTTP: keeps its cookies and sends the CSRF token."""

    def __init__(self, url: str):
        self.url = url
        self.session = requests.Session()
        page = self.session.get(f"{url}/", timeout=15)
        page.raise_for_status()
        self.token = self.session.cookies["csrftoken"]

    def submit(self, *, htmx: bool = True, **data: str) -> requests.Response:
        """Posts the form as htmx does (or as a plain form without script)."""
        headers = {"HX-Request": "true"} if htmx else {}
        payload = {"csrfmiddlewaretoken": self.token, "idempotency_key": str(uuid.uuid4()), **data}
        return self.session.post(f"{self.url}/computations/", data=payload, headers=headers, timeout=30)

    @staticmethod
    def submitted_id(response: requests.Response) -> int | None:
        """The new computation's id in a successful submission's answer."""
        found = re.search(r'Computation <a href="/computations/(\d+)/">', response.text)
        return int(found.group(1)) if found and response.status_code == 200 else None


# The headers htmx sends with every request it makes.
HTMX = {"HTTP_HX_REQUEST": "true"}
