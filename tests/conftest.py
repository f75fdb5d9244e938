import contextlib
import os
import secrets
from collections.abc import Iterator

import MySQLdb
import MySQLdb.cursors
import pytest
import redis
from django.conf import settings
from django.core.management import call_command

from tests.environment import redis_database
from tests.helpers import database_url
from tools.ports import Ports
from tools.stack import START, Stack

# The private Docker engine and the project's image, shared by the container tests and the Swarm's.
pytest_plugins = ["tests.containers.fixtures"]


def pytest_sessionstart(session: pytest.Session) -> None:
    """The tests need the real MySQL and Redis (tests/environment.py found or started them): one that refuses
    stops the run with what to do. Pages are rendered with the production static files storage, whose manifest
    collectstatic writes."""
    database = settings.DATABASES["default"]
    try:
        with _mysql(database) as cursor:
            cursor.execute("SELECT 1")
    except MySQLdb.OperationalError as error:
        pytest.exit(
            f"MySQL at {database['HOST']}:{database['PORT'] or 3306} refused the tests ({error}).\n"
            "Set DATABASE_URL to a user that may create databases (test_*), or leave 127.0.0.1:3306 free: the "
            "run then starts a MariaDB of its own.",
            returncode=3,
        )
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as error:
        pytest.exit(
            f"Redis on 127.0.0.1:6379 refused the tests ({error}).\n"
            "Let it take connections without a password, or leave 6379 free: the run then starts a Redis of its own.",
            returncode=3,
        )
    call_command("collectstatic", interactive=False, verbosity=0)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The local stack (tools.stack, what `make run` starts) on free ports, in production mode, with a
    database and Redis databases of its own; stopped, and its database dropped, at the end of the session."""
    database = settings.DATABASES["default"]
    name = f"test_stack_{os.getpid()}"
    environment = {
        **os.environ,
        "DEBUG": "false",
        "HTTPS": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": database_url(database, name),
        "REDIS_URL": redis_database(settings.REDIS_URL, 12),
        "CACHE_URL": redis_database(settings.REDIS_URL, 13),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "INFO",
        "ADMIN_USERNAME": "admin",
        "ADMIN_EMAIL": "admin@example.com",
        "ADMIN_PASSWORD": secrets.token_urlsafe(16),
        "FLOWER_USER": "flower",
        "FLOWER_PASSWORD": secrets.token_urlsafe(16),
        "STATS_USER": "stats",
        "STATS_PASSWORD": secrets.token_urlsafe(16),
        "PROXY_SECRET": secrets.token_urlsafe(32),
        # The tests come from one address, faster than people; HAProxy's limit has a test of its own.
        "HAPROXY_RATE_LIMIT": "1000000",
        "HAPROXY_CONNECTIONS_PER_ADDRESS": "10000",
        # A killed worker shows as lost sooner than the minute of the default.
        "WORKER_LOST_AFTER_SECONDS": "12",
    }
    for url in (environment["REDIS_URL"], environment["CACHE_URL"]):
        redis.Redis.from_url(url).flushdb()
    log_path = tmp_path_factory.mktemp("stack") / "stack.log"
    log = log_path.open("a", buffering=1)
    stack = Stack(environment, Ports.free(), output=lambda process, line: log.write(f"{process:>8} | {line}\n"))
    with _mysql(database) as cursor:
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    try:
        stack.run_once(str(START / "migrate"))
        stack.start()
        seconds = stack.wait_until_ready()
        print(f"\nstack ready in {seconds:.1f} s at {stack.url} (log: {log_path})")
        yield stack
    finally:
        stack.stop()
        log.close()
        with _mysql(database) as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")


@contextlib.contextmanager
def _mysql(database: dict) -> Iterator[MySQLdb.cursors.Cursor]:
    connection = MySQLdb.connect(
        host=database["HOST"],
        port=int(database["PORT"] or 3306),
        user=database["USER"],
        password=database["PASSWORD"],
        connect_timeout=3,
    )
    try:
        with connection.cursor() as cursor:
            yield cursor
    finally:
        connection.close()
