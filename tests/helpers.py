import re
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import requests

from tools.stack import ROOT, Stack


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


# A worker's log lines of a run: "computation 12 attempt 2 started", "computation 13 instant run ended", ...
WORKER_LINE = re.compile(r"computation (\d+) (?:attempt \d+|instant run) (started|ended)")


def runs_in(logs: str) -> tuple[Counter, Counter]:
    """Per computation, how many runs workers' logs say started and ended."""
    started, ended = Counter(), Counter()
    for match in WORKER_LINE.finditer(logs):
        (started if match.group(2) == "started" else ended)[int(match.group(1))] += 1
    return started, ended


def web_servers_up(url: str, auth: tuple[str, str]) -> set[str]:
    """The web replicas that the HAProxy at `url` finds UP, from its stats page (server-template names: web1, ...);
    none while it does not answer."""
    try:
        lines = requests.get(f"{url}/haproxy/stats;csv", auth=auth, timeout=5).text.splitlines()
    except requests.RequestException:
        return set()
    header = lines[0].split(",") if lines else []
    rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]
    return {
        row["svname"]
        for row in rows
        if row.get("# pxname") == "web" and row["svname"] != "BACKEND" and row.get("status") == "UP"
    }


# The headers htmx sends with every request it makes.
HTMX = {"HTTP_HX_REQUEST": "true"}


@contextmanager
def readers(url: str, count: int = 4) -> Iterator[tuple[Counter, list[str]]]:
    """`count` clients reading the dashboard and its list at `url` while the block runs: the statuses they got,
    and the errors (no answer at all)."""
    statuses: Counter = Counter()
    errors: list[str] = []
    stop = threading.Event()

    def read(path: str) -> None:
        with requests.Session() as session:
            while not stop.is_set():
                try:
                    statuses[session.get(f"{url}{path}", timeout=30).status_code] += 1
                except requests.RequestException as error:
                    errors.append(repr(error))
                time.sleep(0.05)  # about 80 requests a second in all, under HAProxy's per-address limit

    paths = ["/", "/computations/?status=failed"] * count
    threads = [threading.Thread(target=read, args=(path,)) for path in paths[:count]]
    for thread in threads:
        thread.start()
    try:
        yield statuses, errors
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def report(path: Path, name: str, **figures: object) -> None:
    """Prints a test's figures and appends them, dated, to `path` (under var/)."""
    line = f"{name}: " + ", ".join(f"{key}={value}" for key, value in figures.items())
    print(f"\n{line}", flush=True)
    path.parent.mkdir(exist_ok=True)
    with path.open("a") as out:
        out.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")


def admin_session(
    url: str, environment: Mapping[str, str], *, landing: str = "/admin/", **request_options: object
) -> tuple[requests.Session, requests.Response]:
    """Signs the admin user of `environment` in to the admin site at `url`; the session, and the page it landed on
    (`landing`)."""
    session = requests.Session()
    session.get(f"{url}/admin/login/", timeout=10, **request_options)
    data = {
        "csrfmiddlewaretoken": session.cookies["csrftoken"],
        "username": environment["ADMIN_USERNAME"],
        "password": environment["ADMIN_PASSWORD"],
        "next": landing,
    }
    page = session.post(
        f"{url}/admin/login/", data=data, headers={"Referer": f"{url}/admin/login/"}, timeout=10, **request_options
    )
    assert page.status_code == 200 and "/admin/logout/" in page.text and page.url.endswith(landing), page.text[:300]
    return session, page


def api_token(stack: Stack, username: str) -> str:
    """A new API token of `username` (made, a person without a password, if there is none) in the stack's database,
    by the stack's own `manage.py create_api_token`."""
    subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", MAKE_PERSON % {"username": username}],
        cwd=ROOT,
        env=stack.environment,
        check=True,
        capture_output=True,
        timeout=120,
    )
    made = subprocess.run(
        [sys.executable, "manage.py", "create_api_token", username, "tests"],
        cwd=ROOT,
        env=stack.environment,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return made.stdout.strip()


MAKE_PERSON = """
from django.contrib.auth import get_user_model
get_user_model().objects.get_or_create(username=%(username)r)
"""
