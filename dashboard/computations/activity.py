"""The Activity panel: computations finished over the last hour, day, week or month (RANGES), stacked by final
status, and the run time percentiles of each operation, drawn as SVG on the server (no chart library, no script).

Both come from the rollups (tasks.rollups), per minute for the hour, per hour for the day and the week, per day
for the month, so their cost depends on the range, never on the size of the table; only what ended since the last
roll-up (a minute or two) is read from the table, by an index range scan (computation_finished_status).
Percentiles are estimated from the run time buckets (tasks.counters.BUCKETS), interpolated within the bucket they
fall in.

The figures are shared by every render for ACTIVITY_SECONDS through the cache. When they are due, one process
works them out again while the others keep showing the last ones.
"""

import bisect
import contextlib
import datetime
import time
from dataclasses import dataclass

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.cache import cache
from django.db.models import Count, IntegerField, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, TruncMinute
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.safestring import mark_safe
from django.utils.translation import get_language, gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _
from redis.exceptions import RedisError

from tasks import changes, rollups
from tasks.counters import BUCKETS
from tasks.models import ENDED, Computation, Rollup, RollupMark, Status
from tasks.operations import REGISTRY

UTC = datetime.UTC
MINUTE, HOUR, DAY = datetime.timedelta(minutes=1), datetime.timedelta(hours=1), datetime.timedelta(days=1)


@dataclass(frozen=True)
class Range:
    key: str  # in the address: ?activity=24h
    label: Promise  # the switch's
    span: Promise  # "Activity, last …"
    per: Promise  # "finished per …"
    bars: int
    bar: datetime.timedelta
    resolution: str  # of the rollups it reads
    moment: str  # a bar's time, as Django's date filter formats it


RANGES = {
    each.key: each
    for each in (
        Range("1h", _("1 h"), _("60 minutes"), pgettext_lazy("per", "minute"), 60, MINUTE, Rollup.Resolution.MINUTE,
              "H:i"),
        Range("24h", _("24 h"), _("24 hours"), pgettext_lazy("per", "hour"), 24, HOUR, Rollup.Resolution.HOUR, "H:i"),
        Range("7d", _("7 d"), _("7 days"), pgettext_lazy("per", "6 hours"), 28, 6 * HOUR, Rollup.Resolution.HOUR,
              "M j, H:i"),
        Range("30d", _("30 d"), _("30 days"), pgettext_lazy("per", "day"), 30, DAY, Rollup.Resolution.DAY, "M j"),
    )
}  # fmt: skip
DEFAULT_RANGE = "1h"
# Past the rollups, at most this much is read from the table (more only when beat has stopped rolling up).
TAIL = HOUR
ACTIVITY_SECONDS = 10
ACTIVITY_KEY = "dashboard:activity"
# Run times past the rollups come from at most this many computations, the newest.
SAMPLE = 5000
WIDTH, HEIGHT = 600, 120


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
    """One bar: its segments for the SVG, and its counts in ENDED order for the screen readers' table."""

    start: datetime.datetime
    total: int
    segments: list[Segment]
    counts: list[int]


def activity(owner: AbstractBaseUser | None = None, range_key: str = DEFAULT_RANGE) -> dict:
    """The panel's figures over a range, of `owner`'s computations or everyone's: those in the cache if a render
    made them in the last ACTIVITY_SECONDS (or another process is making them now), else new ones."""
    figures, _ = _shared_figures(owner, RANGES[range_key])
    return {**figures, **_chart(figures, RANGES[range_key])}


def panel(owner: AbstractBaseUser | None = None, range_key: str = DEFAULT_RANGE, *, settled: bool = False) -> str:
    """The panel's HTML (dashboard/activity.html), rendered once per figures, language and time zone: its SVG
    and tables cost a list render about a millisecond, for figures that change every ACTIVITY_SECONDS at most.
    `settled`: nothing is queued or running, so this render may be the list's last (its polling stops): figures
    made before the last change are made again, or the panel would keep missing the computations that just ended."""
    span = RANGES[range_key]
    figures, made_at = _shared_figures(owner, span, settled=settled)
    zone = timezone.get_current_timezone_name()
    key = f"{ACTIVITY_KEY}:html:{owner.pk if owner else 'all'}:{span.key}:{get_language()}:{zone}"
    try:
        cached = cache.get(key)
    except RedisError:
        cached = None
    if cached is None or cached[0] != made_at:
        html = render_to_string("dashboard/activity.html", {"activity": {**figures, **_chart(figures, span)}})
        cached = (made_at, html)
        with contextlib.suppress(RedisError):
            cache.set(key, cached, timeout=ACTIVITY_SECONDS * 6)
    return mark_safe(cached[1])  # noqa: S308 (rendered by the template engine, which escaped it)


def _shared_figures(owner: AbstractBaseUser | None, span: Range, *, settled: bool = False) -> tuple[dict, float]:
    """The figures in the cache, and when they were made."""
    key = f"{ACTIVITY_KEY}:{owner.pk if owner else 'all'}:{span.key}"
    try:
        cached = cache.get(key)
    except RedisError:
        cached = None
    version = changes.current_version()
    # Settled, changes are few (the last computations ending): each is worth the figures made again, once, as the
    # list renders once per change.
    behind = settled and version is not None and cached is not None and cached.get("version") != version
    if cached is None or behind or (time.time() - cached["at"] > ACTIVITY_SECONDS and _refresh_is_ours(key)):
        cached = {"at": time.time(), "version": version, "figures": figures(timezone.now(), owner, span)}
        with contextlib.suppress(RedisError):
            cache.set(key, cached, timeout=ACTIVITY_SECONDS * 6)
    return cached["figures"], cached["at"]


def _refresh_is_ours(key: str) -> bool:
    try:
        return cache.add(f"{key}:refreshing", 1, timeout=ACTIVITY_SECONDS)
    except RedisError:
        return True


def figures(now: datetime.datetime, owner: AbstractBaseUser | None, span: Range) -> dict:
    """Counts per bar and status, and run time buckets per operation, from the rollups up to where they reach and
    from the table past it."""
    last = _floor(now, span.bar)
    start = last - (span.bars - 1) * span.bar
    mark = RollupMark.objects.first()
    rolled_to = max(min(mark.rolled_to, now), start) if mark else start
    counts = [dict.fromkeys(ENDED, 0) for _ in range(span.bars)]
    buckets: dict[str, list[int]] = {}

    rolled = Rollup.objects.filter(resolution=span.resolution, period__gte=start, period__lt=rolled_to).order_by()
    if owner is not None:
        rolled = rolled.filter(owner_key=owner.pk)
    for period, status, count in rolled.values_list("period", "status").annotate(count=Sum("count")):
        counts[(period.replace(tzinfo=UTC) - start) // span.bar][status] += count
    per_bucket = {
        f"b{index}": Sum(Cast(KT(f"run_buckets__{index}"), IntegerField())) for index in range(len(BUCKETS) + 1)
    }
    for row in rolled.filter(status=Status.SUCCEEDED).values("operation").annotate(**per_bucket):
        buckets[row["operation"]] = [row[f"b{index}"] or 0 for index in range(len(BUCKETS) + 1)]

    tail = Computation.objects.visible_to(owner).filter(
        finished_at__gte=max(rolled_to, now - TAIL), status__in=ENDED
    ).order_by()  # fmt: skip
    per_minute = tail.annotate(minute=TruncMinute("finished_at", tzinfo=UTC)).values_list("minute", "status")
    for minute, status, count in per_minute.annotate(count=Count("pk")):
        index = (minute.replace(tzinfo=UTC) - start) // span.bar
        if 0 <= index < span.bars:
            counts[index][status] += count
    runs = tail.filter(status=Status.SUCCEEDED, started_at__isnull=False).order_by("-finished_at")
    for operation, started, ended in runs.values_list("operation", "started_at", "finished_at")[:SAMPLE]:
        seconds = (ended - started).total_seconds()
        buckets.setdefault(operation, [0] * (len(BUCKETS) + 1))[bisect.bisect_left(BUCKETS, seconds)] += 1
    return {
        "bars": [(start + index * span.bar, counted) for index, counted in enumerate(counts)],
        "run_times": [
            (name, sum(counted), rollups.percentile(counted, 50), rollups.percentile(counted, 95))
            for name, counted in sorted(buckets.items())
            if sum(counted)
        ],
    }


def _floor(moment: datetime.datetime, step: datetime.timedelta) -> datetime.datetime:
    """The start of the `step` long period, counted from the epoch in UTC, that `moment` falls in."""
    epoch = datetime.datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + (moment.astimezone(UTC) - epoch) // step * step


def _chart(figures: dict, span: Range) -> dict:
    """Bars for the SVG: a segment per final status, heights scaled to the busiest bar."""
    busiest = max((sum(counts.values()) for _, counts in figures["bars"]), default=0) or 1
    bar = WIDTH / span.bars
    bars = []
    for index, (start, counts) in enumerate(figures["bars"]):
        top, segments = HEIGHT, []
        for status in ENDED:
            if counts[status]:
                height = counts[status] / busiest * HEIGHT
                top -= height
                segments.append(Segment(status, status.label, counts[status], index * bar, top, bar * 0.85, height))
        bars.append(Bar(start, sum(counts.values()), segments, [counts[status] for status in ENDED]))
    total = {status: sum(counts[status] for _, counts in figures["bars"]) for status in ENDED}
    labels = {name: gettext(spec.label) for name, spec in REGISTRY.items()}
    return {
        "range": span,
        "bars": bars,
        "busiest": busiest if busiest > 1 or any(total.values()) else 0,
        "totals": total,
        "width": WIDTH,
        "height": HEIGHT,
        "run_time_rows": [(labels.get(name, name), count, p50, p95) for name, count, p50, p95 in figures["run_times"]],
    }
