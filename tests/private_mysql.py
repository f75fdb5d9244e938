"""Oracle's MySQL 9.7 for the integration tests' second run (TEST_DATABASE=mysql). The MariaDB and Redis servers
of the tests (the fault tests', and the suite's own on a machine without them) are the stack's: tools.servers."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import MySQLdb

from tools.servers import Server


class PrivateMySQL(Server):
    """Oracle's MySQL 9.7, as Debian sid ships it (it needs sid's C library): run in the root file system of the
    container tests' MySQL stand-in, chrooted, with its data in a directory of that root. A user of its own,
    authenticated as MySQL 9.7 does by default (caching_sha2_password), over TCP as the app connects."""

    name = "MySQL"
    USER, PASSWORD = "dashboard", "dashboard-tests-password"

    def __init__(self, root: Path, port: int):
        self.root, self.inside = root, Path("/srv") / f"mysql-{port}"
        super().__init__(root / self.inside.relative_to("/"), port)

    def prepare(self) -> None:
        if (self.directory / "data").is_dir():
            return
        (self.directory / "files").mkdir(exist_ok=True)
        subprocess.run(self._mysqld("--initialize-insecure"), check=True, capture_output=True)

    def _mysqld(self, *arguments: str) -> list[str]:
        return [
            "chroot",
            str(self.root),
            "/usr/sbin/mysqld",
            "--no-defaults",
            "--user=root",
            f"--datadir={self.inside / 'data'}",
            f"--secure-file-priv={self.inside / 'files'}",
            *arguments,
        ]

    def command(self) -> list[str]:
        return self._mysqld(
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            "--mysqlx=OFF",
            f"--socket={self.inside / 'mysqld.sock'}",
            f"--pid-file={self.inside / 'mysqld.pid'}",
            f"--log-error={self.inside / 'error.log'}",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_unicode_ci",
            "--innodb-buffer-pool-size=128M",
            "--max-connections=300",
            # As compose/compose.yaml runs it: the audit trail's triggers are made with the binary log on.
            "--log-bin-trust-function-creators=ON",
        )

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
