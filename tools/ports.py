"""The local stack's ports on 127.0.0.1: the defaults of `make run`, free ones for tests, and who holds a taken one."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Collection
from dataclasses import astuple, dataclass, fields
from pathlib import Path

from .servers import StackError

# What listens on each port, for a person reading an error.
ROLES = {
    "front": "the dashboard (HAProxy)",
    "web": "a web replica (uWSGI)",
    "flower": "Flower",
    "monitor": "HAProxy's monitoring listener",
    "cache": "the cache (Redis)",
    "database": "the stack's own MariaDB",
    "broker": "the stack's own Redis (the broker)",
}
TCP_LISTEN = "0A"


@dataclass(frozen=True)
class Ports:
    front: int = 8000
    web: tuple[int, int] = (8001, 8002)
    flower: int = 5555
    monitor: int = 8404
    cache: int = 6380
    # Used only when no MySQL or Redis answers on the default addresses (3306, 6379) and the stack starts its own:
    # ports apart from those, so a server started there later, or the tests' check for one, never meets ours.
    database: int = 3307
    broker: int = 6381

    @classmethod
    def free(cls) -> Ports:
        front, web1, web2, *rest = free_ports(len(astuple(cls())) + 1)
        return cls(front, (web1, web2), *rest)

    def check_free(self, own_servers: Collection[str]) -> None:
        """Raises StackError naming the first port that something else listens on; of "database" and "broker", only
        those in `own_servers` (the servers the stack starts itself)."""
        for field in fields(self):
            if field.name in ("database", "broker") and field.name not in own_servers:
                continue
            value = getattr(self, field.name)
            for port in value if isinstance(value, tuple) else (value,):
                if not _bindable(port):
                    raise taken(port, ROLES[field.name])


def free_ports(count: int) -> list[int]:
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def _bindable(port: int) -> bool:
    """As the servers bind (SO_REUSEADDR): a port in TIME_WAIT from an earlier run is free, a listening one is not."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def taken(port: int, role: str, *, unlike: str = "", other: str = "") -> StackError:
    """The error for a port that something else listens on, naming that program and how to stop it; `unlike` says
    what it is not, `other` is another way out."""
    where = f"Port {port} of 127.0.0.1 ({role}) is taken"
    if (pid := _listener(port)) is None:
        return StackError(
            f"{where} by another program{unlike}.\nFind it (`ss -ltnp 'sport = :{port}'`), stop it "
            f"and run again{other}."
        )
    if launcher := _launcher(pid):
        return StackError(
            f"{where} by another `make run` (pid {launcher}){unlike}.\nStop it (Ctrl-C in its "
            f"terminal, or `kill {launcher}`) and run again{other}."
        )
    name = Path(_command(pid).split(" ")[0]).name or "a program"
    return StackError(f"{where} by {name} (pid {pid}){unlike}.\nStop it (`kill {pid}`) and run again{other}.")


def _listener(port: int) -> int | None:
    """The process listening on `port`, read from /proc; None when it is not ours to see (another user's, or
    another network namespace's)."""
    sockets = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as rows:
            for row in list(rows)[1:]:
                columns = row.split()
                if columns[3] == TCP_LISTEN and int(columns[1].rsplit(":", 1)[1], 16) == port:
                    sockets.add(f"socket:[{columns[9]}]")
    for process in Path("/proc").iterdir():
        if process.name.isdigit():
            with contextlib.suppress(OSError):
                if any(os.readlink(descriptor) in sockets for descriptor in (process / "fd").iterdir()):
                    return int(process.name)
    return None


def _launcher(pid: int) -> int | None:
    """The `make run` launcher that `pid` descends from (HAProxy's worker from its master from the launcher), if
    any."""
    while pid > 1:
        if "-m tools.run" in _command(pid):
            return pid
        pid = _parent(pid)
    return None


def _parent(pid: int) -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("PPid:"):
                return int(line.split()[1])
    return 0


def _command(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    return ""
