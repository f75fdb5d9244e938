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

import datetime
from dataclasses import dataclass

from django.contrib.auth.base_user import AbstractBaseUser
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.safestring import mark_safe
from django.utils.translation import get_language, gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from tasks import cache_aside, changes, rollups
from tasks.models import ENDED, Rollup
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
        Range(
            "1h", _("1 h"), _("60 minutes"), pgettext_lazy("per", "minute"), 60, MINUTE, Rollup.Resolution.MINUTE, "H:i"
        ),
        Range("24h", _("24 h"), _("24 hours"), pgettext_lazy("per", "hour"), 24, HOUR, Rollup.Resolution.HOUR, "H:i"),
        Range(
            "7d",
            _("7 d"),
            _("7 days"),
            pgettext_lazy("per", "6 hours"),
            28,
            6 * HOUR,
            Rollup.Resolution.HOUR,
            "M j, H:i",
        ),
        Range("30d", _("30 d"), _("30 days"), pgettext_lazy("per", "day"), 30, DAY, Rollup.Resolution.DAY, "M j"),
    )
}
DEFAULT_RANGE = "1h"
ACTIVITY_SECONDS = 10
ACTIVITY_KEY = "dashboard:activity:v3"  # v3: the heading moved to the list
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
    figures = _shared_figures(owner, RANGES[range_key]).value[1]
    return {**figures, **_chart(figures, RANGES[range_key])}


def panel(owner: AbstractBaseUser | None = None, range_key: str = DEFAULT_RANGE, *, settled: bool = False) -> str:
    """The panel's HTML (dashboard/activity.html), rendered once per figures, language and time zone: its SVG
    and tables cost a list render about a millisecond, for figures that change every ACTIVITY_SECONDS at most.
    `settled`: nothing is queued or running, so this render may be the list's last (its polling stops): figures
    made before the last change are made again, or the panel would keep missing the computations that just ended."""
    span = RANGES[range_key]
    made = _shared_figures(owner, span, settled=settled)
    zone = timezone.get_current_timezone_name()
    key = f"{ACTIVITY_KEY}:html:{owner.pk if owner else 'all'}:{span.key}:{get_language()}:{zone}"
    cached = cache_aside.read(key)
    if cached is None or cached[0] != made.at:
        html = render_to_string(
            "dashboard/activity.html", {"activity": {**made.value[1], **_chart(made.value[1], span)}}
        )
        cached = (made.at, html)
        cache_aside.keep(key, cached, ACTIVITY_SECONDS * 6)
    return mark_safe(cached[1])  # noqa: S308 (rendered by the template engine, which escaped it)


def _shared_figures(owner: AbstractBaseUser | None, span: Range, *, settled: bool = False) -> cache_aside.Made:
    """The figures (tasks.rollups.finished) as the cache shares them, with the change counter's version they were
    made at: (version, figures)."""
    version = changes.current_version()
    return cache_aside.shared(
        f"{ACTIVITY_KEY}:{owner.pk if owner else 'all'}:{span.key}",
        lambda: (version, rollups.finished(timezone.now(), owner, span)),
        fresh_for=ACTIVITY_SECONDS,
        kept_for=ACTIVITY_SECONDS * 6,
        # Settled, changes are few (the last computations ending): each is worth the figures made again, once, as
        # the list renders once per change.
        stale=lambda made: settled and version is not None and made.value[0] != version,
    )


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
