"""Private Redis, MariaDB and MySQL servers: on free ports in a directory of their own, so the fault tests that stop
or kill them never touch the machine's shared servers, and the integration tests can run on MySQL 9.7 too."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import MySQLdb
import MySQLdb.cursors
import redis


class Server:
    def __init__(self, directory: Path, port: int):
        self.directory, self.port = directory, port
        self.process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self, timeout: float = 30) -> None:
        log = (self.directory / "server.log").open("ab")
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{type(self).__name__} did not start; see {self.directory / 'server.log'}")
            time.sleep(0.1)

    def stop(self) -> None:
        """A clean shutdown (TERM), waiting for it."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class PrivateRedis(Server):
    """Redis with an append-only file, so queued work survives a restart (as in Compose)."""

    def command(self) -> list[str]:
        return [
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
            "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "no",
        ]  # fmt: skip

    def url(self, database: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{database}"

    def ready(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False


class PrivateMariaDB(Server):
    def __init__(self, directory: Path, port: int):
        super().__init__(directory, port)
        subprocess.run(
            ["mariadb-install-db", "--no-defaults", f"--datadir={directory / 'data'}", "--user=root",
             "--auth-root-authentication-method=normal", "--skip-test-db"],
            check=True, capture_output=True,
        )  # fmt: skip

    def command(self) -> list[str]:
        return [
            "/usr/sbin/mariadbd", "--no-defaults", f"--datadir={self.directory / 'data'}", f"--port={self.port}",
            "--bind-address=127.0.0.1", f"--socket={self.directory / 'mariadb.sock'}", "--user=root",
            f"--pid-file={self.directory / 'mariadb.pid'}", "--skip-name-resolve", "--innodb-buffer-pool-size=64M",
            "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci", "--max-connections=300",
        ]  # fmt: skip

    def url(self, database: str) -> str:
        return f"mysql://root@127.0.0.1:{self.port}/{database}"

    def ready(self) -> bool:
        try:
            MySQLdb.connect(host="127.0.0.1", port=self.port, user="root", connect_timeout=1).close()
        except MySQLdb.OperationalError:
            return False
        return True

    @contextlib.contextmanager
    def cursor(self, database: str) -> Iterator[MySQLdb.cursors.Cursor]:
        connection = MySQLdb.connect(host="127.0.0.1", port=self.port, user="root", database=database, autocommit=True)
        try:
            with connection.cursor() as cursor:
                yield cursor
        finally:
            connection.close()


class PrivateMySQL(Server):
    """Oracle's MySQL 9.7, as Debian sid ships it (it needs sid's C library): run in the root file system of the
    container tests' MySQL stand-in, chrooted, with its data in a directory of that root. A user of its own,
    authenticated as MySQL 9.7 does by default (caching_sha2_password), over TCP as the app connects."""

    USER, PASSWORD = "dashboard", "dashboard-tests-password"

    def __init__(self, root: Path, port: int):
        self.root, self.inside = root, Path("/srv") / f"mysql-{port}"
        super().__init__(root / self.inside.relative_to("/"), port)
        (self.directory / "files").mkdir(exist_ok=True)
        self._mysqld("--initialize-insecure")

    def _mysqld(self, *arguments: str) -> list[str]:
        command = [
            "chroot", str(self.root), "/usr/sbin/mysqld", "--no-defaults", "--user=root",
            f"--datadir={self.inside / 'data'}", f"--secure-file-priv={self.inside / 'files'}", *arguments,
        ]  # fmt: skip
        if arguments == ("--initialize-insecure",):
            subprocess.run(command, check=True, capture_output=True)
        return command

    def command(self) -> list[str]:
        return self._mysqld(
            f"--port={self.port}", "--bind-address=127.0.0.1", "--mysqlx=OFF",
            f"--socket={self.inside / 'mysqld.sock'}", f"--pid-file={self.inside / 'mysqld.pid'}",
            f"--log-error={self.inside / 'error.log'}", "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_unicode_ci", "--innodb-buffer-pool-size=128M", "--max-connections=300",
            # As compose/compose.yaml runs it: the audit trail's triggers are made with the binary log on.
            "--log-bin-trust-function-creators=ON",
        )  # fmt: skip

    def start(self, timeout: float = 60) -> None:
        super().start(timeout)
        connection = MySQLdb.connect(unix_socket=str(self.directory / "mysqld.sock"), user="root")
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"CREATE USER IF NOT EXISTS '{self.USER}'@'%' IDENTIFIED BY '{self.PASSWORD}'")
                cursor.execute(f"GRANT ALL ON *.* TO '{self.USER}'@'%'")
        finally:
            connection.close()

    def url(self, database: str) -> str:
        return f"mysql://{self.USER}:{self.PASSWORD}@127.0.0.1:{self.port}/{database}"

    def ready(self) -> bool:
        try:
            MySQLdb.connect(unix_socket=str(self.directory / "mysqld.sock"), user="root", connect_timeout=1).close()
        except MySQLdb.OperationalError:
            return False
        return True

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
