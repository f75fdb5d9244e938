"""The cache backend (dashboard/web/cache.py) when the cache does not answer: one connection attempt pays the timeout,
then the process leaves the cache alone for a moment and pages answer at once without it."""

import contextlib
import socket
import time
from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.urls import reverse
from redis.connection import Connection
from redis.exceptions import RedisError

from dashboard.web import cache as backend

pytestmark = pytest.mark.django_db


@pytest.fixture
def silent_address() -> Iterator[str]:
    """An address on loopback where connections hang, as to a host that vanished: a listening socket never
    accepted from, its queue full, so the kernel drops new connections' SYNs."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    address = server.getsockname()
    queued = []
    for _ in range(3):
        client = socket.socket()
        client.settimeout(0.3)
        with contextlib.suppress(TimeoutError):
            client.connect(address)
        queued.append(client)
    yield f"{address[0]}:{address[1]}"
    for each in (*queued, server):
        each.close()


@pytest.fixture
def attempts(monkeypatch, silent_address) -> list[float]:
    """The times of the connection attempts made to the silent address (the broker's are not counted)."""
    made: list[float] = []
    connect = Connection._connect

    def counted(self):
        if f"{self.host}:{self.port}" == silent_address:
            made.append(time.monotonic())
        return connect(self)

    monkeypatch.setattr(Connection, "_connect", counted)
    monkeypatch.setattr(backend, "_paused_until", {})
    return made


def test_after_one_attempt_times_out_the_cache_is_left_alone_for_a_moment(settings, silent_address, attempts):
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": f"redis://{silent_address}/0"}}
    started = time.monotonic()
    with pytest.raises(RedisError):
        cache.get("key")
    assert time.monotonic() - started >= 0.9, "the first attempt waits for its connect timeout"
    started = time.monotonic()
    for _ in range(20):
        with pytest.raises(RedisError):
            cache.get("key")
    assert time.monotonic() - started < 0.5 and len(attempts) == 1
    # Once the pause is over, it tries again.
    backend._paused_until.clear()
    with pytest.raises(RedisError):
        cache.set("key", 1)
    assert len(attempts) == 2


def test_pages_answer_at_once_while_the_cache_is_silent(client, settings, silent_address, attempts):
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": f"redis://{silent_address}/0"}}
    client.get(reverse("dashboard"))  # the attempt that pays the timeout
    started = time.monotonic()
    for page in ("dashboard", "computations") * 3:
        assert client.get(reverse(page)).status_code == 200
    assert time.monotonic() - started < 2 and len(attempts) == 1


def test_another_cache_server_is_not_paused_by_one_that_failed(settings, silent_address, attempts):
    answering = settings.CACHES["default"]
    settings.CACHES = {"default": {**answering, "LOCATION": f"redis://{silent_address}/0"}}
    with pytest.raises(RedisError):
        cache.get("key")
    settings.CACHES = {"default": answering}
    cache.set("dashboard:test", "answers")
    assert cache.get("dashboard:test") == "answers"
