"""MariaDB and Redis as processes of our own, each with its data in a directory and listening on a port of 127.0.0.1.

`make run` starts them when no server answers on the default addresses (the embedded defaults, data under var/),
`make test` when the machine has none, and the fault tests to stop and kill them at will. They run as the user who
started them: no system service, no root needed.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import getpass
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import MySQLdb
import MySQLdb.cursors
import redis

PR_SET_PDEATHSIG = 1
# The root accounts of mariadb-install-db that a connection reaches without a name lookup.
_ROOT_HOSTS = ("localhost", "127.0.0.1", "::1")
_LIBC = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


class StackError(Exception):
    """A failure a person can act on: the message says what is wrong and the command that fixes it, in one or two
    lines, and is printed as it is, without a traceback."""


def die_with_parent() -> None:
    """In the child, before exec: TERM when the launcher dies, even by kill -9, so nothing is left behind.
    (Only a C call here: the child of a process with threads must not take Python's locks.)"""
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Server:
    """One server process: started and waited for until it answers, its output in `directory`/server.log, its
    socket and start-up files in a private (0700) runtime directory that lives as long as it runs."""

    name = "server"

    def __init__(self, directory: Path, port: int, *, password: str = ""):
        self.directory, self.port, self.password = directory, port, password
        self.process: subprocess.Popen[bytes] | None = None
        self.runtime: Path | None = None

    @property
    def log(self) -> Path:
        return self.directory / "server.log"

    def prepare(self) -> None:
        """What must exist before the first start (a data directory); nothing by default."""

    def command(self) -> list[str]:
        raise NotImplementedError

    def configuration(self) -> bytes | None:
        """What the server reads on its standard input at start, if anything."""
        return None

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self, timeout: float = 60) -> None:
        # The data (queued work, every computation) is the user's alone.
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.prepare()
        self.runtime = Path(tempfile.mkdtemp(prefix=f"{self.name}-"))
        configuration = self.configuration()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.PIPE if configuration else subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        if configuration:
            assert self.process.stdin is not None
            self.process.stdin.write(configuration)
            self.process.stdin.close()
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise StackError(
                    f"{self.name} did not start on 127.0.0.1:{self.port}: {self.last_log_line()}\nIts log: {self.log}"
                )
            time.sleep(0.1)

    def last_log_line(self) -> str:
        lines = self.log.read_text(errors="replace").strip().splitlines() if self.log.exists() else []
        return lines[-1] if lines else "it wrote nothing"

    def stop(self) -> None:
        """A clean shutdown (TERM), waiting for it."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)
        self._forget_runtime()

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._forget_runtime()

    def _forget_runtime(self) -> None:
        if self.runtime:
            shutil.rmtree(self.runtime, ignore_errors=True)


class Redis(Server):
    """Redis with an append-only file, so queued work survives a restart (as in Compose). Its configuration comes on
    its standard input, so a password never shows in the process list."""

    name = "Redis"

    def command(self) -> list[str]:
        return ["redis-server", "-"]

    def configuration(self) -> bytes:
        lines = [
            f"port {self.port}",
            "bind 127.0.0.1",
            f'dir "{self.directory}"',
            "appendonly yes",
            "appendfsync everysec",
            'save ""',
            "daemonize no",
        ]
        if self.password:
            lines.append(f"requirepass {self.password}")
        return "\n".join(lines).encode() + b"\n"

    def url(self, database: int) -> str:
        credentials = f":{self.password}@" if self.password else ""
        return f"redis://{credentials}127.0.0.1:{self.port}/{database}"

    def ready(self) -> bool:
        client = redis.Redis(port=self.port, password=self.password or None, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()


class MariaDB(Server):
    """MariaDB, its data in `directory`/data, created on the first start. With a password, root may sign in only
    with it: it is set at every start (from a file in the private runtime directory), so it follows the one given."""

    name = "MariaDB"

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def prepare(self) -> None:
        if (self.data / "mysql").is_dir():
            return
        installed = subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--datadir={self.data}",
                f"--user={getpass.getuser()}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
            ],
            capture_output=True,
            text=True,
        )
        if installed.returncode != 0:
            shutil.rmtree(self.data, ignore_errors=True)  # a half-made data directory would be taken as made
            last = (installed.stderr or installed.stdout).strip().splitlines() or ["no output"]
            raise StackError(f"mariadb-install-db could not create {self.data}: {last[-1]}")

    def command(self) -> list[str]:
        assert self.runtime is not None
        command = [
            "/usr/sbin/mariadbd",
            "--no-defaults",
            f"--datadir={self.data}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            f"--socket={self.runtime / 'mariadb.sock'}",
            f"--user={getpass.getuser()}",
            f"--pid-file={self.runtime / 'mariadb.pid'}",
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=128M",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_unicode_ci",
            "--max-connections=300",
        ]
        if self.password:
            accounts = ", ".join(f"'root'@'{host}' IDENTIFIED BY '{self.password}'" for host in _ROOT_HOSTS)
            init = self.runtime / "init.sql"
            # mariadb-install-db also makes a root account named after the host, which only a name lookup reaches.
            init.write_text(f"ALTER USER {accounts};\nDROP USER IF EXISTS 'root'@'{socket.gethostname()}';\n")
            command.append(f"--init-file={init}")
        return command

    def url(self, database: str) -> str:
        credentials = f"root:{self.password}" if self.password else "root"
        return f"mysql://{credentials}@127.0.0.1:{self.port}/{database}"

    def ready(self) -> bool:
        try:
            self.connect().close()
        except MySQLdb.OperationalError:
            return False
        return True

    def connect(self, database: str | None = None) -> MySQLdb.Connection:
        options = {"database": database} if database else {}
        return MySQLdb.connect(
            host="127.0.0.1",
            port=self.port,
            user="root",
            password=self.password,
            connect_timeout=1,
            autocommit=True,
            **options,
        )

    @contextlib.contextmanager
    def cursor(self, database: str) -> Iterator[MySQLdb.cursors.Cursor]:
        connection = self.connect(database)
        try:
            with connection.cursor() as cursor:
                yield cursor
        finally:
            connection.close()
