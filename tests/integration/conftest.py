import threading
from collections.abc import Iterator

import pytest
from django.core.cache import cache

from tasks import redis_clients, sending
from tests import factories


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """An empty cache, and no metrics or sweep records of an earlier test (on the broker's server)."""
    cache.clear()
    durable = redis_clients.durable()
    for pattern in ("metrics:*", "dashboard:*"):
        if keys := list(durable.scan_iter(pattern)):
            durable.delete(*keys)
    yield


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker) -> Iterator[object]:
    """A real Celery worker, in threads of this process, consuming the real Redis broker (the tests' database)."""
    from celery.contrib.testing.worker import start_worker

    from tasks.celery import app

    app.control.purge()  # messages left by an earlier, interrupted run
    with (
        django_db_blocker.unblock(),
        start_worker(
            app,
            pool="threads",
            concurrency=2,
            perform_ping_check=False,
            loglevel="WARNING",
            shutdown_timeout=30,
        ) as worker,
    ):
        yield worker


@pytest.fixture
def sent(monkeypatch) -> list[int]:
    """The ids of the steps sent to the broker (sending.dispatch), in order; nothing really sent."""
    dispatched: list[int] = []
    lock = threading.Lock()

    def dispatch(pks, **kwargs) -> None:
        with lock:
            dispatched.extend(pks)

    monkeypatch.setattr(sending, "dispatch", dispatch)
    return dispatched


@pytest.fixture
def accounts_on(settings) -> None:
    """DASHBOARD_LOGIN_REQUIRED: every page needs a signed-in person, who sees their own work only."""
    settings.DASHBOARD_LOGIN_REQUIRED = True


@pytest.fixture
def people() -> dict:
    """Two people, ann and bob, and sam, an operator: each signs in with factories.PASSWORD."""
    return {"ann": factories.person("ann"), "bob": factories.person("bob"), "sam": factories.operator("sam")}


@pytest.fixture
def operator_client(client):
    """The test client, signed in as an operator (staff in the "Operators" group)."""
    client.force_login(factories.operator())
    return client
