"""The Activity panel: computations finished per minute over the last hour, stacked by final status, and the
run time percentiles of each operation, drawn as SVG on the server (no chart library, no script).

Both come from index range scans over the last hour (computation_finished_status), never the whole table, and
are shared by every render for ACTIVITY_SECONDS through the cache: at a minute's grain, ten seconds are not seen.
When they are due, one process works them out again while the others keep showing the last ones: at a million
rows an hour the scan takes a second, and every web thread running it at once would stall the list.
"""

import contextlib
import datetime
import statistics
import time
from dataclasses import dataclass

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.cache import cache
from django.db.models import Count
from django.db.models.functions import TruncMinute
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.translation import get_language, gettext
from redis.exceptions import RedisError

from tasks import changes
from tasks.models import ENDED, Computation, Status
from tasks.operations import REGISTRY

MINUTES = 60
ACTIVITY_SECONDS = 10
ACTIVITY_KEY = "dashboard:activity"
# Run time percentiles come from at most this many of the last hour's computations, the newest.
SAMPLE = 5000
WIDTH, HEIGHT, GAP = 600, 120, 2


@dataclass(frozen=True)
class Segment:
    status: str
    label: str
    count: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Bar:
    """One minute: its segments for the SVG, and its counts in ENDED order for the screen readers' table."""

    minute: datetime.datetime
    total: int
    segments: list[Segment]
    counts: list[int]


def activity(owner: AbstractBaseUser | None = None) -> dict:
    """The panel's figures, of `owner`'s computations or everyone's: those in the cache if a render made them in
    the last ACTIVITY_SECONDS (or another process is making them now), else new ones."""
    figures, _ = _shared_figures(owner)
    return {**figures, **_chart(figures)}


def panel(owner: AbstractBaseUser | None = None, *, settled: bool = False) -> str:
    """The panel's HTML (dashboard/activity.html), rendered once per figures, language and time zone: its SVG
    and tables cost a list render about a millisecond, for figures that change every ACTIVITY_SECONDS at most.
    `settled`: nothing is queued or running, so this render may be the list's last (its polling stops): figures
    made before the last change are made again, or the panel would keep missing the computations that just ended."""
    figures, made_at = _shared_figures(owner, settled=settled)
    zone = timezone.get_current_timezone_name()
    key = f"{ACTIVITY_KEY}:html:{owner.pk if owner else 'all'}:{get_language()}:{zone}"
    try:
        cached = cache.get(key)
    except RedisError:
        cached = None
    if cached is None or cached[0] != made_at:
        html = render_to_string("dashboard/activity.html", {"activity": {**figures, **_chart(figures)}})
        cached = (made_at, html)
        with contextlib.suppress(RedisError):
            cache.set(key, cached, timeout=ACTIVITY_SECONDS * 6)
    return mark_safe(cached[1])  # noqa: S308 (rendered by the template engine, which escaped it)


def _shared_figures(owner: AbstractBaseUser | None, *, settled: bool = False) -> tuple[dict, float]:
    """The figures in the cache, and when they were made."""
    key = f"{ACTIVITY_KEY}:{owner.pk if owner else 'all'}"
    try:
        cached = cache.get(key)
    except RedisError:
        cached = None
    version = changes.current_version()
    # Settled, changes are few (the last computations ending): each is worth the figures made again, once, as the
    # list renders once per change.
    behind = settled and version is not None and cached is not None and cached.get("version") != version
    if cached is None or behind or (time.time() - cached["at"] > ACTIVITY_SECONDS and _refresh_is_ours(key)):
        cached = {"at": time.time(), "version": version, "figures": _figures(timezone.now(), owner)}
        with contextlib.suppress(RedisError):
            cache.set(key, cached, timeout=ACTIVITY_SECONDS * 6)
    return cached["figures"], cached["at"]


def _refresh_is_ours(key: str) -> bool:
    try:
        return cache.add(f"{key}:refreshing", 1, timeout=ACTIVITY_SECONDS)
    except RedisError:
        return True


def _figures(now: datetime.datetime, owner: AbstractBaseUser | None) -> dict:
    start = now.replace(second=0, microsecond=0) - datetime.timedelta(minutes=MINUTES - 1)
    finished = Computation.objects.visible_to(owner).filter(finished_at__gte=start, status__in=ENDED).order_by()
    # Minutes in UTC, as the database stores them (no time zone tables needed); shown in the reader's zone.
    per_minute = (
        finished.annotate(minute=TruncMinute("finished_at", tzinfo=datetime.UTC))
        .values_list("minute", "status")
        .annotate(count=Count("pk"))
    )
    minutes = [start + datetime.timedelta(minutes=index) for index in range(MINUTES)]
    counts = {minute: dict.fromkeys(ENDED, 0) for minute in minutes}
    for minute, status, count in per_minute:
        counts[minute.replace(tzinfo=datetime.UTC)][status] = count
    runs = finished.filter(status=Status.SUCCEEDED, started_at__isnull=False).order_by("-finished_at")
    durations: dict[str, list[float]] = {}
    for operation, started, ended in runs.values_list("operation", "started_at", "finished_at")[:SAMPLE]:
        durations.setdefault(operation, []).append((ended - started).total_seconds())
    return {
        "minutes": [(minute, counts[minute]) for minute in minutes],
        "run_times": [
            (name, len(values), _percentile(values, 50), _percentile(values, 95))
            for name, values in sorted(durations.items())
        ],
    }


def _percentile(values: list[float], percent: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


def _chart(figures: dict) -> dict:
    """Bars for the SVG: one per minute, a segment per final status, heights scaled to the busiest minute."""
    busiest = max((sum(counts.values()) for _, counts in figures["minutes"]), default=0) or 1
    bar = WIDTH / MINUTES
    bars = []
    for index, (minute, counts) in enumerate(figures["minutes"]):
        top, segments = HEIGHT, []
        for status in ENDED:
            if counts[status]:
                height = counts[status] / busiest * HEIGHT
                top -= height
                segments.append(Segment(status, status.label, counts[status], index * bar, top, bar - GAP, height))
        bars.append(Bar(minute, sum(counts.values()), segments, [counts[status] for status in ENDED]))
    total = {status: sum(counts[status] for _, counts in figures["minutes"]) for status in ENDED}
    labels = {name: gettext(spec.label) for name, spec in REGISTRY.items()}
    return {
        "bars": bars,
        "busiest": busiest if busiest > 1 or any(total.values()) else 0,
        "totals": total,
        "width": WIDTH,
        "height": HEIGHT,
        "run_time_rows": [(labels.get(name, name), count, p50, p95) for name, count, p50, p95 in figures["run_times"]],
    }
