"""Rolling ended computations up into rows per minute and per hour (tasks.models.Rollup), which outlive them.

Beat sends `roll_up` every minute. Each run counts again, from the index (finished_at, status), the minutes from
RECOUNT_MINUTES before where the last run stopped to the last whole minute, and replaces them: a worker
that waited out a database outage writes a finished_at up to COMPUTATION_DATABASE_RETRY_SECONDS in the past, and
the recount takes it in. The hours those minutes fall in are then made again from their minutes (the current hour
too, so hours always reach the last whole minute), and the days (UTC) those hours fall in from their hours: a
month of the Activity panel reads 30 rows per operation and status, not 720.

On the first run over an existing table, the history older than MINUTES_KEPT goes straight into hours,
BACKFILL_DAYS at a time per run, oldest first; how far it went is kept in one row (RollupMark), never recounted,
since the computations it counted may be pruned by then. Minutes are kept MINUTES_KEPT, hours and days HOURS_KEPT.
"""

import bisect
import datetime
import logging
from collections.abc import Iterable
from typing import Protocol

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, DurationField, ExpressionWrapper, F, IntegerField, Min, Q, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, TruncHour, TruncMinute
from django.utils import timezone

from .counters import BUCKETS
from .models import ENDED, Computation, Rollup, RollupMark, Status

logger = logging.getLogger(__name__)

UTC = datetime.UTC
MINUTE, HOUR = datetime.timedelta(minutes=1), datetime.timedelta(hours=1)
RECOUNT_MINUTES = 5
MINUTES_KEPT = datetime.timedelta(days=7)
HOURS_KEPT = datetime.timedelta(days=2 * 366)
BACKFILL_DAYS = 31
Resolution = Rollup.Resolution
# Past the rollups, at most this much is read from the table (more only when beat has stopped rolling up).
TAIL = HOUR
# Run times past the rollups come from at most this many computations, the newest.
SAMPLE = 5000


class Span(Protocol):
    """A stretch of time as bars: `bars` of `bar` each, the last one holding now, read from rollups of
    `resolution`."""

    bars: int
    bar: datetime.timedelta
    resolution: str


def roll_up(now: datetime.datetime | None = None) -> int:
    """Brings the rollups up to the last whole minute; how many computations the minutes it counted hold."""
    end = (now or timezone.now()).astimezone(UTC).replace(second=0, microsecond=0)
    # Minutes are kept from a whole hour on, so that every hour is made of all its minutes or none.
    kept_from = _next_hour(end - MINUTES_KEPT)
    mark = RollupMark.objects.first() or _first_mark(kept_from)
    days_from = None
    if mark.backfilled_to < mark.minutes_from:
        stop = min(mark.backfilled_to + datetime.timedelta(days=BACKFILL_DAYS), mark.minutes_from)
        _replace(Resolution.HOUR, mark.backfilled_to, stop, TruncHour)
        RollupMark.objects.filter(pk=mark.pk).update(backfilled_to=stop)
        days_from = mark.backfilled_to
    start = max(mark.rolled_to - RECOUNT_MINUTES * MINUTE, kept_from, mark.minutes_from)
    counted = _replace(Resolution.MINUTE, start, end, TruncMinute)
    hours_from = max(_hour(start), kept_from, mark.minutes_from)
    _sum_up(Resolution.MINUTE, Resolution.HOUR, hours_from, end)
    _sum_up(Resolution.HOUR, Resolution.DAY, min(days_from or hours_from, hours_from), end)
    RollupMark.objects.filter(pk=mark.pk).update(rolled_to=end)
    Rollup.objects.filter(resolution=Resolution.MINUTE, period__lt=end - MINUTES_KEPT).delete()
    Rollup.objects.filter(resolution__in=[Resolution.HOUR, Resolution.DAY], period__lt=end - HOURS_KEPT).delete()
    return counted


def _first_mark(kept_from: datetime.datetime) -> RollupMark:
    """The first roll-up: minutes from `kept_from`, hours before it from the oldest computation that ended."""
    older = Computation.objects.filter(finished_at__lt=kept_from, status__in=ENDED)
    first = older.aggregate(first=Min("finished_at"))["first"]
    backfill_from = first.astimezone(UTC).replace(minute=0, second=0, microsecond=0) if first else kept_from
    return RollupMark.objects.create(minutes_from=kept_from, backfilled_to=backfill_from, rolled_to=kept_from)


def _next_hour(moment: datetime.datetime) -> datetime.datetime:
    """The start of the hour `moment` falls in, or of the next one unless it is a whole hour."""
    hour = moment.replace(minute=0, second=0, microsecond=0)
    return hour if hour == moment else hour + HOUR


def _replace(resolution: str, start: datetime.datetime, end: datetime.datetime, trunc) -> int:
    """Counts the computations that ended in [start, end) per period, operation, status and owner, and replaces
    the rollups of those periods with them, in one transaction."""
    run = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    ran = Q(started_at__isnull=False)
    buckets = {
        f"b{index}": Count("pk", filter=ran & Q(run__lte=datetime.timedelta(seconds=bound)))
        for index, bound in enumerate(BUCKETS)
    }
    rows = (
        Computation.objects.filter(finished_at__gte=start, finished_at__lt=end, status__in=ENDED)
        .order_by()
        .alias(run=run)
        .annotate(period=trunc("finished_at", tzinfo=UTC))
        .values("period", "operation", "status", "owner_id")
        .annotate(count=Count("pk"), runs=Count("pk", filter=ran), run_total=Sum("run", filter=ran), **buckets)
    )
    made = [_rollup(resolution, row) for row in rows]
    with transaction.atomic():
        Rollup.objects.filter(resolution=resolution, period__gte=start, period__lt=end).delete()
        Rollup.objects.bulk_create(made, batch_size=1000)
    return sum(rollup.count for rollup in made)


def _rollup(resolution: str, row: dict) -> Rollup:
    # Cumulative counts per bound, made per bucket (and the runs past the last bound).
    cumulative = [row[f"b{index}"] for index in range(len(BUCKETS))] + [row["runs"]]
    per_bucket = [cumulative[0]] + [cumulative[i] - cumulative[i - 1] for i in range(1, len(cumulative))]
    total = row["run_total"]
    return Rollup(
        resolution=resolution,
        period=row["period"].astimezone(UTC) if row["period"].tzinfo else row["period"].replace(tzinfo=UTC),
        operation=row["operation"],
        status=row["status"],
        owner_key=row["owner_id"] or 0,
        count=row["count"],
        runs=row["runs"],
        run_seconds=total.total_seconds() if isinstance(total, datetime.timedelta) else (total or 0) / 1e6,
        run_buckets=per_bucket,
    )


def _sum_up(source: str, target: str, start: datetime.datetime, end: datetime.datetime) -> None:
    """The periods of `target` (hours, days) from the one `start` falls in to the one `end` falls in, made again as
    the sums of their `source` rollups (minutes, hours)."""
    floor = _hour if target == Resolution.HOUR else _day
    start = floor(start)
    parts = Rollup.objects.filter(resolution=source, period__gte=start, period__lt=end)
    sums: dict[tuple, Rollup] = {}
    for part in parts:
        key = (floor(part.period), part.operation, part.status, part.owner_key)
        if key not in sums:
            sums[key] = Rollup(
                resolution=target,
                period=key[0],
                operation=part.operation,
                status=part.status,
                owner_key=part.owner_key,
                count=0,
                runs=0,
                run_seconds=0.0,
                run_buckets=[0] * (len(BUCKETS) + 1),
            )
        total = sums[key]
        total.count += part.count
        total.runs += part.runs
        total.run_seconds += part.run_seconds
        total.run_buckets = [a + b for a, b in zip(total.run_buckets, part.run_buckets, strict=True)]
    with transaction.atomic():
        Rollup.objects.filter(resolution=target, period__gte=start, period__lt=end).delete()
        Rollup.objects.bulk_create(sums.values(), batch_size=1000)


def _hour(moment: datetime.datetime) -> datetime.datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _day(moment: datetime.datetime) -> datetime.datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def percentile(buckets: Iterable[int], percent: float) -> float | None:
    """The run time below which `percent` of the runs fall, from their counts per bucket, interpolated linearly
    within its bucket (the last, open one answers its lower bound)."""
    counts = list(buckets)
    total = sum(counts)
    if not total:
        return None
    wanted = total * percent / 100
    cumulative = 0
    for index, count in enumerate(counts):
        if count and cumulative + count >= wanted:
            low = BUCKETS[index - 1] if index else 0.0
            if index >= len(BUCKETS):
                return low
            return low + (BUCKETS[index] - low) * (wanted - cumulative) / count
        cumulative += count
    return BUCKETS[-1]


def finished(now: datetime.datetime, owner: AbstractBaseUser | None, span: Span) -> dict:
    """What ended over `span` up to `now`, of `owner`'s computations or everyone's (the Activity panel): counts per
    bar and status, and run time buckets and percentiles per operation, from the rollups up to where they reach
    and from the table past it."""
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

    tail = (
        Computation.objects.visible_to(owner)
        .filter(finished_at__gte=max(rolled_to, now - TAIL), status__in=ENDED)
        .order_by()
    )
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
            (name, sum(counted), percentile(counted, 50), percentile(counted, 95))
            for name, counted in sorted(buckets.items())
            if sum(counted)
        ],
    }


def _floor(moment: datetime.datetime, step: datetime.timedelta) -> datetime.datetime:
    """The start of the `step` long period, counted from the epoch in UTC, that `moment` falls in."""
    epoch = datetime.datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + (moment.astimezone(UTC) - epoch) // step * step
