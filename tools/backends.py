"""The database and the broker of the local stack: the ones configured, else the machine's, else its own.

DATABASE_URL and REDIS_URL (the environment or .env) win. Without them, a MySQL on 127.0.0.1:3306 and a Redis on
127.0.0.1:6379 are used when they answer; when nothing listens there, the stack runs a MariaDB and a Redis of its
own (tools.servers), their data under var/. Whatever is found is checked here, before anything starts, and every
refusal is a StackError: what is wrong, and the command that fixes it.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
import MySQLdb
import redis

from .ports import Ports, taken
from .servers import MariaDB, Redis, Server, StackError

DEFAULT_DATABASE = "mysql://root@127.0.0.1:3306/dashboard"
DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
# MySQL's client errors for a server that is not there, and for one that does not speak MySQL.
_UNREACHABLE = {2002, 2003, 2005}
_NOT_MYSQL = {2006, 2013, 2027}
_ACCESS_DENIED = {1044, 1045, 1698}


@dataclass(frozen=True)
class Backend:
    """A server the stack uses: its URL, where it comes from (for the banner), and the server to start if it is
    the stack's own."""

    url: str
    origin: str
    server: Server | None = None


def answers(address: tuple[str, int]) -> bool:
    """Whether anything accepts a connection there."""
    try:
        socket.create_connection(address, timeout=1).close()
    except OSError:
        return False
    return True


def database(environment: dict[str, str], var: Path, ports: Ports) -> Backend:
    if url := environment.get("DATABASE_URL"):
        check_database(url, configured=True)
        return Backend(url, f"MySQL at {_address(url)}, from DATABASE_URL")
    if answers(("127.0.0.1", 3306)):
        check_database(DEFAULT_DATABASE, configured=False)
        return Backend(DEFAULT_DATABASE, "the MySQL answering on 127.0.0.1:3306 (user root)")
    server = MariaDB(var / "mariadb", ports.database, password=environment["EMBEDDED_MARIADB_PASSWORD"])
    return Backend(
        server.url("dashboard"),
        f"a MariaDB of its own on 127.0.0.1:{ports.database}, data in {shown(server.directory)} "
        "(nothing answered on 127.0.0.1:3306)",
        server,
    )


def broker(environment: dict[str, str], var: Path, ports: Ports) -> Backend:
    if url := environment.get("REDIS_URL"):
        check_broker(url, configured=True)
        return Backend(url, f"Redis at {_address(url)}, from REDIS_URL")
    if answers(("127.0.0.1", 6379)):
        check_broker(DEFAULT_BROKER, configured=False)
        return Backend(DEFAULT_BROKER, "the Redis answering on 127.0.0.1:6379")
    server = Redis(var / "redis", ports.broker, password=environment["EMBEDDED_REDIS_PASSWORD"])
    return Backend(
        server.url(0),
        f"a Redis of its own on 127.0.0.1:{ports.broker}, data in {shown(server.directory)} "
        "(nothing answered on 127.0.0.1:6379)",
        server,
    )


def check_database(url: str, *, configured: bool) -> None:
    """Signs in to the server of `url` with its credentials; a StackError says why it could not."""
    settings = dj_database_url.parse(url)
    address = _address(url)
    try:
        _connect(url).close()
    except MySQLdb.OperationalError as error:
        code, message = error.args[0], error.args[-1]
        if code in _ACCESS_DENIED:
            raise StackError(
                f"MySQL at {address} refused user {settings['USER']} ({message}).\n"
                f"Give the stack a user that may create the database {settings['NAME']}: "
                f"set DATABASE_URL=mysql://USER:PASSWORD@{address}/{settings['NAME']} in .env"
            ) from None
        if code in _NOT_MYSQL and not configured:
            raise _not_the_server(3306, "MySQL", "DATABASE_URL") from None
        if code in _UNREACHABLE | _NOT_MYSQL:
            raise StackError(
                f"No MySQL answers at {address}, DATABASE_URL's server ({message}).\n"
                "Start it, or remove DATABASE_URL from .env and the environment: the stack then runs its own."
            ) from None
        raise StackError(f"MySQL at {address} refused the connection: {message}") from None


def create_database(url: str) -> None:
    """CREATE DATABASE (utf8mb4) if it does not exist. (In Compose the MySQL image creates it, and the application's
    user need not have the right to.)"""
    settings = dj_database_url.parse(url)
    connection = _connect(url)
    quoted = settings["NAME"].replace("`", "``")
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{quoted}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    except MySQLdb.Error as error:
        raise StackError(
            f"MySQL at {_address(url)} would not create the database {settings['NAME']}: {error.args[-1]}\n"
            "Create it (utf8mb4), or grant that user the right to."
        ) from None
    finally:
        connection.close()


def _connect(url: str) -> MySQLdb.Connection:
    """A connection to the server of `url`, with its credentials, to no database (it may not exist yet)."""
    settings = dj_database_url.parse(url)
    return MySQLdb.connect(
        host=settings["HOST"] or "127.0.0.1",
        port=int(settings["PORT"] or 3306),
        user=settings["USER"],
        password=settings["PASSWORD"] or "",
        connect_timeout=5,
    )


def check_broker(url: str, *, configured: bool) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    address = _address(url)
    try:
        client.ping()
    except redis.AuthenticationError as error:
        raise StackError(
            f"Redis at {address} refused the password ({error}).\n"
            f"Give the stack its password: set REDIS_URL=redis://:PASSWORD@{address}/0 in .env"
        ) from None
    except redis.ResponseError as error:
        if "NOAUTH" not in str(error):
            raise StackError(f"Redis at {address} refused the connection: {error}") from None
        raise StackError(
            f"Redis at {address} asks for a password.\n"
            f"Give the stack its password: set REDIS_URL=redis://:PASSWORD@{address}/0 in .env"
        ) from None
    except redis.ConnectionError as error:
        if not configured:
            raise _not_the_server(6379, "Redis", "REDIS_URL") from None
        raise StackError(
            f"No Redis answers at {address}, REDIS_URL's server ({error}).\n"
            "Start it, or remove REDIS_URL from .env and the environment: the stack then runs its own."
        ) from None
    except redis.RedisError:
        if not configured:
            raise _not_the_server(6379, "Redis", "REDIS_URL") from None
        raise StackError(f"What answers at {address} (REDIS_URL) is not Redis.\nCorrect REDIS_URL in .env") from None
    finally:
        client.close()


def _not_the_server(port: int, kind: str, variable: str) -> StackError:
    """Something listens on a default port but does not speak the protocol of the server expected there."""
    return taken(
        port,
        f"{kind}'s default",
        unlike=f", which does not answer as {kind}",
        other=f", or set {variable} in .env to your {kind}",
    )


def _address(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


def shown(path: Path) -> str:
    """A path as a person reads it: relative to the working directory when it lies under it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
