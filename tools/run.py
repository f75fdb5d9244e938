"""`make run` and `make dev`: the whole stack on this machine in the foreground, until Ctrl-C.

The database and the broker are the configured ones, the machine's, or a MariaDB and a Redis of the stack's own
(tools.backends decides); secrets are generated once into var/local.env; everything that stands in the way before
the stack is up is told in one or two lines (tools.servers.StackError), never a traceback.
"""

from __future__ import annotations

import argparse
import errno
import os
import secrets
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

from dotenv import dotenv_values

from . import backends
from .ports import Ports
from .servers import StackError
from .stack import ROOT, START, WORKER_VARIABLES, Stack

# The stack's own MariaDB takes about 115 MB when it is created; below this much free space it is not started.
FREE_SPACE_NEEDED = 300 * 2**20


def local_environment(var: Path) -> dict[str, str]:
    """The variables of `make run`: the real environment, over .env, over secrets generated once per checkout
    (var/local.env), so production mode runs here without a single default password."""
    generated = var / "local.env"
    values = dotenv_values(generated) if generated.exists() else {}
    fresh = {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ADMIN_USERNAME": "admin",
        "ADMIN_PASSWORD": secrets.token_urlsafe(12),
        "FLOWER_USER": "flower",
        "FLOWER_PASSWORD": secrets.token_urlsafe(12),
        "STATS_USER": "stats",
        "STATS_PASSWORD": secrets.token_urlsafe(12),
        # HAProxy sends it to the replicas, which believe its forwarded headers only with it.
        "PROXY_SECRET": secrets.token_urlsafe(32),
        # The stack's own MariaDB and Redis, when it runs them: loopback is every local user's, so a password.
        "EMBEDDED_MARIADB_PASSWORD": secrets.token_urlsafe(18),
        "EMBEDDED_REDIS_PASSWORD": secrets.token_urlsafe(18),
    }
    if missing := {key: value for key, value in fresh.items() if key not in values}:
        # A var/ of before some key existed gets it added; what is there is never changed.
        var.mkdir(parents=True, exist_ok=True)
        with os.fdopen(os.open(generated, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a") as out:
            out.write("".join(f"{key}={value}\n" for key, value in missing.items()))
        values.update(missing)
    # Plain HTTP on loopback: cookies without the Secure flag, no redirect to https.
    values = {"HTTPS": "false", **values, **dotenv_values(ROOT / ".env"), **os.environ}
    return {key: value for key, value in values.items() if value is not None}


def serve(stack: Stack, banner: list[str]) -> int:
    """Runs until Ctrl-C, TERM, or one of the processes ends; then stops them all. A worker that ends (a warm
    shutdown from the Workers page) is started again instead, as Compose restarts its container."""
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        for line in banner:
            print(line, flush=True)
        while not stopping.is_set():
            exited = stack.exited()
            for name in [name for name in exited if name in WORKER_VARIABLES]:
                stack.output(name, f"exited with status {exited.pop(name)}: starting it again")
                stack.start(name)
            if exited:
                break
            stopping.wait(0.5)
        if not stopping.is_set():
            print(f"stopping everything: {exited} exited", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        print("stopping...", flush=True)
        stack.stop()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dev", action="store_true", help="Django's development server and a worker, DEBUG on")
    parser.add_argument(
        "--var",
        type=Path,
        default=ROOT / "var",
        help="where the generated secrets and the data "
        "of the stack's own MariaDB and Redis are kept (default: var/ of the checkout)",
    )
    arguments = parser.parse_args()
    # Ctrl-C, or SIGINT from anyone, stops the stack, even when this process was started with SIGINT ignored (as a
    # shell's background job is).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    started, var = time.monotonic(), arguments.var.absolute()
    try:
        stack, used = start(var, dev=arguments.dev)
    except StackError as error:
        failure = str(error)
    except KeyboardInterrupt:
        failure = "Interrupted during start-up."
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
        failure = f"The disk is full ({error}).\nFree some space (`df -h {var}` shows it) and run again."
    else:
        return serve(stack, banner(stack, used, time.monotonic() - started, var, dev=arguments.dev))
    print(failure, file=sys.stderr)
    return 1


def start(var: Path, *, dev: bool) -> tuple[Stack, list[backends.Backend]]:
    """The stack, ready, with the database and the broker it uses; on a failure, everything it started is stopped
    again."""
    environment = local_environment(var)
    if dev:
        environment["DEBUG"] = "true"
    ports = Ports()
    database, broker = backends.database(environment, var, ports), backends.broker(environment, var, ports)
    own = {name: backend.server for name, backend in (("database", database), ("broker", broker)) if backend.server}
    if own and (free := shutil.disk_usage(var).free) < FREE_SPACE_NEEDED:
        raise StackError(
            f"Only {free // 2**20} MB are free on the disk of {var}; the stack's own database needs "
            f"{FREE_SPACE_NEEDED // 2**20} MB.\nFree some space (`df -h {var}` shows it) and run again."
        )
    ports.check_free(own)
    stack = Stack({**environment, "DATABASE_URL": database.url, "REDIS_URL": broker.url}, ports)
    try:
        for name, server in own.items():
            stack.start_server(name, server)
        backends.create_database(database.url)
        stack.run_once(str(START / "migrate"))
        if dev:
            stack.start_dev()
        else:
            stack.start()
            stack.wait_until_ready()
    except BaseException:
        stack.stop()
        raise
    return stack, [database, broker]


def banner(stack: Stack, used: list[backends.Backend], seconds: float, var: Path, *, dev: bool) -> list[str]:
    url, env = stack.url, stack.environment
    database, broker = used
    lines = [
        "",
        f"Ready in {seconds:.1f} s. Ctrl-C stops everything.",
        f"  Dashboard      {url}/",
    ]
    if not dev:
        lines += [
            f"  Admin          {url}/admin/          {env['ADMIN_USERNAME']} / {env['ADMIN_PASSWORD']}",
            f"  Flower         {url}/flower/         {env['FLOWER_USER']} / {env['FLOWER_PASSWORD']}",
            f"  HAProxy stats  {url}/haproxy/stats   {env['STATS_USER']} / {env['STATS_PASSWORD']}",
        ]
    lines += [
        f"  Database       {database.origin}",
        f"  Broker         {broker.origin}",
        f"  Credentials and the secret key are in {backends.shown(var / 'local.env')} (or your .env); DATABASE_URL and",
        "  REDIS_URL in .env point the stack at a MySQL and a Redis of yours.",
        "",
    ]
    return lines


if __name__ == "__main__":
    sys.exit(main())
