"""The configuration the tests run with, set before Django reads it (loaded by `-p tests.environment`).

Production mode (DEBUG off) with a secret of the tests' own, and Redis databases apart from the ones `make run`
uses, so a test run never consumes a developer's queue. A local `.env` does not leak in: these win over it.
The servers: DATABASE_URL's MySQL if set (pytest-django creates and drops `test_<name>` there) and TEST_REDIS_URL's
Redis if set (two runs side by side each need their own), else the machine's MySQL or MariaDB and Redis when they
answer on 127.0.0.1:3306 and 6379, else a MariaDB and a Redis that the run starts itself (tools.servers) and
removes when it ends.
"""

import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tools.backends import DEFAULT_BROKER, DEFAULT_DATABASE, answers
from tools.ports import free_ports
from tools.servers import MariaDB, Redis

TEST_ENVIRONMENT = {
    "DEBUG": "false",
    # The test client speaks plain HTTP; the HTTPS settings have a test of their own (check --deploy).
    "HTTPS": "false",
    # Tests submit far faster than a person; the limit has tests of its own.
    "SUBMISSION_RATE_LIMIT": "100000/m",
    "API_TOKEN_RATE_LIMIT": "100000/m",
    "SECRET_KEY": "tests-only-secret-key-" + "t" * 40,
    "ALLOWED_HOSTS": "testserver,127.0.0.1,localhost",
    # The test client (127.0.0.1) stands where HAProxy does; other addresses are clients.
    "TRUSTED_PROXIES": "127.0.0.1/32",
    "LOG_LEVEL": "WARNING",
    # Playwright's sync API runs an event loop in the main thread, which Django would take for async code.
    "DJANGO_ALLOW_ASYNC_UNSAFE": "true",
}

os.environ.update(TEST_ENVIRONMENT)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """The run's servers, started here before pytest-django sets Django up when the machine has none. With
    TEST_DATABASE=mysql the database is a private MySQL 9.7 (tests.private_mysql.PrivateMySQL); `make test` runs the
    integration layer so too."""
    if os.environ.get("TEST_DATABASE") == "mysql":
        from tests.containers.standins import STANDINS
        from tests.private_mysql import PrivateMySQL

        mysql = PrivateMySQL(STANDINS["mysql"].root(), free_ports(1)[0])
        mysql.start()
        early_config.add_cleanup(mysql.remove)
        os.environ["DATABASE_URL"] = mysql.url("dashboard")
    elif "DATABASE_URL" not in os.environ:
        answered = answers(("127.0.0.1", 3306))
        os.environ["DATABASE_URL"] = DEFAULT_DATABASE if answered else _own(early_config, MariaDB).url("dashboard")
    if not (broker := os.environ.get("TEST_REDIS_URL", "")):
        broker = DEFAULT_BROKER if answers(("127.0.0.1", 6379)) else _own(early_config, Redis).url(0)
    os.environ["REDIS_URL"], os.environ["CACHE_URL"] = redis_database(broker, 10), redis_database(broker, 11)


def _own[S: (MariaDB, Redis)](config: pytest.Config, kind: type[S]) -> S:
    """A server of the run's own, on a free port in a directory removed with it at the end of the run."""
    directory = Path(tempfile.mkdtemp(prefix=f"dashboard-tests-{kind.name.lower()}-"))
    server = kind(directory, free_ports(1)[0])
    server.start()
    print(f"{kind.name} of the tests' own on 127.0.0.1:{server.port} (nothing answered on the default port)")

    def remove() -> None:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)

    config.add_cleanup(remove)
    return server


def redis_database(url: str, database: int) -> str:
    """`url` with another Redis database number."""
    return urlsplit(url)._replace(path=f"/{database}").geturl()
