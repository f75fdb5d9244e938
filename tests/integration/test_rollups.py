"""Rollups of ended computations per minute and per hour: equal to the counts they replace, late writes taken in,
old history rolled into hours, oldest first."""

import datetime
import random
from collections import Counter

import pytest
from django.db.models import Sum

from tasks import rollups
from tasks.counters import BUCKETS
from tasks.models import ENDED, Computation, Rollup, Status
from tests import factories

pytestmark = pytest.mark.django_db

UTC = datetime.UTC
NOW = datetime.datetime(2026, 11, 30, 12, 30, 20, tzinfo=UTC)


def ended(
    finished_at: datetime.datetime,
    *,
    operation: str = "add",
    status: str = Status.SUCCEEDED,
    run_seconds: float | None = 0.02,
    owner=None,
) -> Computation:
    started = finished_at - datetime.timedelta(seconds=run_seconds) if run_seconds is not None else None
    return factories.computation(
        status, operation=operation, owner=owner, created_at=finished_at, started_at=started, finished_at=finished_at
    )


def minute_counts(resolution: str = Rollup.Resolution.MINUTE) -> Counter:
    counts = Counter()
    rows = Rollup.objects.filter(resolution=resolution).values_list("period", "operation", "status", "count")
    for period, operation, status, count in rows:  # one row per owner
        counts[period, operation, status] += count
    return counts


def test_the_rollups_equal_the_counts_they_replace():
    person = factories.person("ann")
    rng = random.Random(3)
    made = []
    for _ in range(300):
        finished = NOW - datetime.timedelta(seconds=rng.uniform(61, 3 * 3600))
        status = rng.choice(ENDED)
        made.append(
            ended(
                finished,
                operation=rng.choice(["add", "factorize"]),
                status=status,
                run_seconds=None if status == Status.CANCELLED and rng.random() < 0.5 else rng.uniform(0, 20),
                owner=person if rng.random() < 0.3 else None,
            )
        )
    ended(NOW - datetime.timedelta(seconds=5))  # this minute is not whole yet: left for the next run
    assert rollups.roll_up(NOW) == 300

    expected = Counter()
    for computation in made:
        minute = computation.finished_at.replace(second=0, microsecond=0)
        expected[minute, computation.operation, computation.status] += 1
    assert minute_counts() == expected
    hours = Counter()
    for (minute, operation, status), count in expected.items():
        hours[minute.replace(minute=0), operation, status] += count
    assert minute_counts(Rollup.Resolution.HOUR) == hours
    days = Counter()
    for (minute, operation, status), count in expected.items():
        days[minute.replace(hour=0, minute=0), operation, status] += count
    assert minute_counts(Rollup.Resolution.DAY) == days
    # Per owner, and run times by bucket: as many runs as computations that started.
    assert Rollup.objects.filter(resolution="minute", owner_key=person.pk).aggregate(n=Sum("count"))["n"] == sum(
        1 for c in made if c.owner_id == person.pk
    )
    for rollup in Rollup.objects.all():
        assert sum(rollup.run_buckets) == rollup.runs <= rollup.count
    runs = [c for c in made if c.started_at]
    total = sum((c.finished_at - c.started_at).total_seconds() for c in runs)
    assert sum(r.run_seconds for r in Rollup.objects.filter(resolution="minute")) == pytest.approx(total)


def test_a_run_counts_again_what_was_written_late_and_nothing_twice():
    ended(NOW - datetime.timedelta(minutes=10))
    rollups.roll_up(NOW)
    late = ended(NOW - datetime.timedelta(minutes=3))  # a worker that waited out a database outage
    ended(NOW - datetime.timedelta(seconds=30))
    rollups.roll_up(NOW + datetime.timedelta(minutes=1))
    counts = minute_counts()
    assert counts[late.finished_at.replace(second=0, microsecond=0), "add", "succeeded"] == 1
    assert sum(counts.values()) == 3
    assert sum(minute_counts(Rollup.Resolution.HOUR).values()) == 3


def test_history_older_than_the_minutes_kept_goes_into_hours_a_month_per_run_oldest_first():
    oldest = ended(NOW - datetime.timedelta(days=80))
    older = ended(NOW - datetime.timedelta(days=40))
    recent = ended(NOW - datetime.timedelta(days=2))
    rollups.roll_up(NOW)
    hours = minute_counts(Rollup.Resolution.HOUR)
    assert hours[oldest.finished_at.replace(minute=0, second=0, microsecond=0), "add", "succeeded"] == 1
    assert sum(hours.values()) == 2, "the oldest month, then the recent minutes"
    assert sum(minute_counts().values()) == 1
    rollups.roll_up(NOW + datetime.timedelta(minutes=1))
    rollups.roll_up(NOW + datetime.timedelta(minutes=2))
    hours = minute_counts(Rollup.Resolution.HOUR)
    assert hours[older.finished_at.replace(minute=0, second=0, microsecond=0), "add", "succeeded"] == 1
    assert hours[recent.finished_at.replace(minute=0, second=0, microsecond=0), "add", "succeeded"] == 1
    assert sum(hours.values()) == 3
    days = minute_counts(Rollup.Resolution.DAY)
    for each in (oldest, older, recent):
        assert days[each.finished_at.replace(hour=0, minute=0, second=0, microsecond=0), "add", "succeeded"] == 1
    assert sum(days.values()) == 3
    assert not Rollup.objects.filter(resolution="minute", period__lt=NOW - rollups.MINUTES_KEPT).exists()


def test_percentiles_come_from_the_buckets():
    counts = [0] * (len(BUCKETS) + 1)
    counts[BUCKETS.index(1)] = 10  # ten runs between 0.5 s and 1 s
    assert rollups.percentile(counts, 50) == pytest.approx(0.75)
    counts[-1] = 10  # ten more past the last bound
    assert rollups.percentile(counts, 95) == BUCKETS[-1]
    assert rollups.percentile([0] * (len(BUCKETS) + 1), 50) is None
