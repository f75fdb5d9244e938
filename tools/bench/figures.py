"""What the measurements share: the stack's addresses, the rows of the table, wrk and /proc readings."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..stack import ROOT, Stack

OUTPUT = ROOT / "var" / "bench"
DATABASE = "bench_dashboard"
REDIS_BROKER, REDIS_RESULTS = "redis://127.0.0.1:6379/14", "redis://127.0.0.1:6379/13"
WRK_SECONDS = 8
CONCURRENCY = 8


@dataclass
class Row:
    what: str
    ours: float
    baseline: float | None
    unit: str
    target: str
    met: bool | None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return None if not self.baseline else self.ours / self.baseline


class Measurements:
    """The stack being measured and the rows measured so far."""

    def __init__(self, stack: Stack):
        self.stack = stack
        self.rows: list[Row] = []
        self.url = stack.url

    def children(self, name: str) -> list[int]:
        """The processes a stack process started (its process group, without itself)."""
        leader = self.stack.processes[name].pid
        return [pid for pid in group_pids(leader) if pid != leader]


def wrk(
    url: str,
    *,
    connections: int = CONCURRENCY,
    seconds: int = WRK_SECONDS,
    headers: dict | None = None,
    script: str | None = None,
) -> dict[str, float]:
    """Requests per second and latency percentiles (ms) from wrk."""
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    for name, value in (headers or {}).items():
        command[1:1] = ["-H", f"{name}: {value}"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        if script:
            lua.write(script)
            lua.flush()
            command[1:1] = ["-s", lua.name]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    units = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    figures = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))}
    for percent, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE):
        figures[f"p{percent}"] = float(value) * units[unit]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    figures["errors"] = int(non_2xx.group(1)) if non_2xx else 0
    return figures


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


def group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid:
                    pids.append(int(entry.name))
            except ProcessLookupError:
                continue
    return sorted(pids)


def percentile_of(values: list[float], percent: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


def print_table(rows: list[Row]) -> None:
    header = f"{'what':<66} {'ours':>10} {'baseline':>10} {'ratio':>7}  {'target':<14} met"
    print("\n" + header + "\n" + "-" * len(header))
    for row in rows:
        baseline = f"{row.baseline:>10.2f}" if row.baseline is not None else f"{'':>10}"
        ratio = f"{row.ratio:>6.2f}×" if row.ratio is not None else f"{'':>7}"
        met = {True: "yes", False: "NO", None: "-"}[row.met]
        print(f"{row.what:<66} {row.ours:>10.2f} {baseline} {ratio}  {row.target:<14} {met}  {row.unit}")
        if row.note:
            print(f"{'':<4}{row.note}")
