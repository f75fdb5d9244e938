import MySQLdb
import pytest
import redis
from django.conf import settings

START_MYSQL = "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd"
START_REDIS = (
    'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no '
    "--dir /var/lib/redis --logfile /var/log/redis/ci.log"
)


def pytest_sessionstart(session: pytest.Session) -> None:
    """The tests need the real MySQL and Redis: a missing one stops the run with how to start it."""
    database = settings.DATABASES["default"]
    try:
        MySQLdb.connect(
            host=database["HOST"],
            port=int(database["PORT"] or 3306),
            user=database["USER"],
            password=database["PASSWORD"],
            connect_timeout=3,
        ).close()
    except MySQLdb.OperationalError as error:
        pytest.exit(f"MySQL is not reachable ({error}). Start it, e.g.: {START_MYSQL}", returncode=3)
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as error:
        pytest.exit(
            f"Redis is not reachable at {settings.REDIS_URL} ({error}). Start it, e.g.: {START_REDIS}",
            returncode=3,
        )
