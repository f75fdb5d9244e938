"""The configuration the tests run with, set before Django reads it (loaded by `-p tests.environment`).

Production mode (DEBUG off) with a secret of the tests' own, and Redis databases apart from the ones `make run`
uses, so a test run never consumes a developer's queue. A local `.env` does not leak in: these win over it.
DATABASE_URL may point the tests at another MySQL; pytest-django creates and drops `test_<name>` there.
"""

import os

import pytest

TEST_ENVIRONMENT = {
    "DEBUG": "false",
    # The test client speaks plain HTTP; the HTTPS settings have a test of their own (check --deploy).
    "HTTPS": "false",
    # Tests submit far faster than a person; the limit has tests of its own.
    "SUBMISSION_RATE_LIMIT": "100000/m",
    "SECRET_KEY": "tests-only-secret-key-" + "t" * 40,
    "ALLOWED_HOSTS": "testserver,127.0.0.1,localhost",
    # The test client (127.0.0.1) stands where HAProxy does; other addresses are clients.
    "TRUSTED_PROXIES": "127.0.0.1/32",
    "REDIS_URL": "redis://127.0.0.1:6379/10",
    "CACHE_URL": "redis://127.0.0.1:6379/11",
    "LOG_LEVEL": "WARNING",
    # Playwright's sync API runs an event loop in the main thread, which Django would take for async code.
    "DJANGO_ALLOW_ASYNC_UNSAFE": "true",
}

os.environ.update(TEST_ENVIRONMENT)
os.environ.setdefault("DATABASE_URL", "mysql://root@127.0.0.1:3306/dashboard")


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """TEST_DATABASE=mysql: the run goes to a private MySQL 9.7 (tests.servers.PrivateMySQL), started here before
    pytest-django sets Django up, and removed when the run ends; `make test` runs the integration layer so too."""
    if os.environ.get("TEST_DATABASE") != "mysql":
        return
    from tests.containers.standins import STANDINS
    from tests.servers import PrivateMySQL
    from tools.stack import free_ports

    server = PrivateMySQL(STANDINS["mysql"].root(), free_ports(1)[0])
    server.start()
    early_config.add_cleanup(server.remove)
    os.environ["DATABASE_URL"] = server.url("dashboard")
