"""The Activity panel: finished per minute over the last hour (or per hour, 6 hours, day over a day, a week, a
month), stacked by status, and run time percentiles, as server-rendered SVG with the same figures in tables; drawn
from the rollups and, past them, from the table."""

import dataclasses
import random
import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone, translation

from dashboard.computations import activity
from tasks import changes, rollups
from tasks.models import ENDED, Computation, Status
from tests import factories

pytestmark = pytest.mark.django_db


def finished(minutes_ago: float, status: str, seconds: float, operation: str = "add") -> Computation:
    end = timezone.now() - timedelta(minutes=minutes_ago)
    return factories.computation(
        status,
        operation=operation,
        inputs={"x": "1", "y": "1"},
        started_at=end - timedelta(seconds=seconds),
        finished_at=end,
    )


def test_the_panel_counts_the_last_hour_by_minute_and_status():
    for _ in range(3):
        finished(5, Status.SUCCEEDED, 1)
    finished(5, Status.FAILED, 1)
    finished(20, Status.CANCELLED, 1)
    finished(90, Status.SUCCEEDED, 1)  # outside the hour
    figures = activity.activity()
    assert figures["totals"] == {"succeeded": 3, "failed": 1, "cancelled": 1, "not_run": 0}
    assert figures["busiest"] == 4
    assert len(figures["bars"]) == 60
    busy = [bar for bar in figures["bars"] if bar.total]
    assert [bar.total for bar in busy] == [1, 4]
    assert [bar.counts for bar in busy] == [[0, 0, 1, 0], [3, 1, 0, 0]], "succeeded, failed, cancelled, not run"
    heights = {segment.status: segment.height for segment in busy[1].segments}
    assert heights == {"succeeded": 90.0, "failed": 30.0}


def test_run_time_percentiles_per_operation():
    for seconds in (1, 2, 3, 4, 100):
        finished(10, Status.SUCCEEDED, seconds, operation="factorize")
    finished(10, Status.FAILED, 500, operation="factorize")  # failures are not run times
    rows = activity.activity()["run_time_rows"]
    assert len(rows) == 1
    label, count, p50, p95 = rows[0]
    # Estimated within their buckets: the median 3 s falls in (2.5, 5], the 95th 100 s in (60, 120].
    assert (label, count) == ("Factorize n into primes", 5)
    assert 2.5 < p50 <= 5 and 60 < p95 <= 120


def test_the_list_draws_it_as_accessible_svg(client):
    succeeded = finished(1, Status.SUCCEEDED, 2)
    finished(1, Status.CANCELLED, 2)
    cache.clear()
    html = client.get(reverse("computations"), HTTP_HX_REQUEST="true").content.decode()
    assert '<svg class="chart"' in html and 'role="img" aria-labelledby="activity-title activity-desc"' in html
    assert "In the last 60 minutes: 1 succeeded, 0 failed, 1 cancelled, 0 not run" in html
    assert html.count('<rect class="bar bar-succeeded"') == 1
    assert re.search(r"<title>\d\d:\d\d: Cancelled 1</title></rect>", html), "each segment names its status"
    minute = timezone.localtime(succeeded.finished_at).strftime("%H:%M")
    assert re.search(rf'<tr><th scope="row">{minute}</th><td>1</td><td>0</td><td>1</td><td>0</td></tr>', html), (
        "the screen readers' table has a column per status, zeros included"
    )
    assert "<caption>Computations finished per minute</caption>" in html
    assert "Run time of the computations that succeeded in the last 60 minutes" in html
    assert re.search(r"<td>[12]\.\d{3} s</td>", html), "2 s, estimated within its bucket (1, 2.5]"


def test_due_figures_are_worked_out_by_one_process_while_the_others_show_the_last_ones():
    finished(3, Status.SUCCEEDED, 1)
    assert activity.activity()["totals"]["succeeded"] == 1
    finished(3, Status.SUCCEEDED, 1)
    assert activity.activity()["totals"]["succeeded"] == 1, "shared for ACTIVITY_SECONDS"
    key = f"{activity.ACTIVITY_KEY}:all:1h"
    cached = cache.get(key)
    cache.set(key, dataclasses.replace(cached, at=cached.at - activity.ACTIVITY_SECONDS - 1))
    cache.add(f"{key}:refreshing", 1)  # another process is at it
    assert activity.activity()["totals"]["succeeded"] == 1, "the last figures meanwhile"
    cache.delete(f"{key}:refreshing")
    assert activity.activity()["totals"]["succeeded"] == 2


def test_the_panel_is_rendered_once_per_figures_and_language(monkeypatch):
    renders = []
    render = activity.render_to_string
    monkeypatch.setattr(activity, "render_to_string", lambda *args: renders.append(args) or render(*args))
    finished(1, Status.SUCCEEDED, 1)
    english = activity.panel()
    with translation.override("zh-hans"):
        chinese = activity.panel()
    assert "Computations finished per minute" in english and "Computations finished per minute" not in chinese
    finished(1, Status.SUCCEEDED, 1)
    assert activity.panel() == english and len(renders) == 2, "the same figures: the HTML from the cache"
    key = f"{activity.ACTIVITY_KEY}:all:1h"
    cache.set(key, dataclasses.replace(cache.get(key), at=0))  # due, and this process refreshes them
    assert "2 succeeded" in activity.panel()


def test_the_last_poll_brings_the_final_figures(client):
    """While work runs the figures are shared for ACTIVITY_SECONDS; the poll that finds nothing left in flight
    answers 286 (the polling stops), so it must carry the figures of what just ended, not those of before."""
    finished(2, Status.SUCCEEDED, 1)
    running = factories.computation(Status.RUNNING, inputs={"x": "1", "y": "1"})
    changes.record_change()
    polled = client.get(reverse("computations"), HTTP_HX_REQUEST="true")
    assert polled.status_code == 200 and "In the last 60 minutes: 1 succeeded" in polled.content.decode()
    Computation.objects.filter(pk=running.pk).update(status=Status.SUCCEEDED, finished_at=timezone.now())
    changes.record_change()
    last = client.get(reverse("computations"), HTTP_HX_REQUEST="true")
    assert last.status_code == 286
    assert "In the last 60 minutes: 2 succeeded" in last.content.decode()
    assert re.search(r"Succeeded <strong>2</strong>", last.content.decode()), "the strip agrees"


def test_every_range_counts_what_the_table_holds_from_the_rollups_and_past_them():
    person = factories.person("ann")
    now = timezone.now()
    rng = random.Random(7)
    made = []
    for _ in range(400):
        made.append(
            factories.computation(
                rng.choice(ENDED),
                inputs={"x": "1", "y": "1"},
                owner=rng.choice([None, person]),
                started_at=None,
                finished_at=now - timedelta(seconds=rng.uniform(90, 32 * 86400)),
            )
        )
    for minutes in (3, 30, 59):
        made.append(finished(minutes, Status.SUCCEEDED, 1))
        Computation.objects.filter(pk=made[-1].pk).update(owner=person)
        made[-1].owner_id = person.pk
    rollups.roll_up(now)
    rollups.roll_up(now)  # the second run backfills the rest of the history older than a week
    # Past the rollups: ended since the last whole minute, read from the table.
    for status in (Status.FAILED, Status.SUCCEEDED):
        made.append(factories.computation(status, inputs={"x": "1", "y": "1"}, started_at=None, finished_at=now))
    cache.clear()
    for key, span in activity.RANGES.items():
        for owner in (None, person):
            figures = rollups.finished(now, owner, span)
            start = figures["bars"][0][0]
            expected = [dict.fromkeys(ENDED, 0) for _ in range(span.bars)]
            for row in made:
                if row.finished_at >= start and (owner is None or row.owner_id == owner.pk):
                    expected[(row.finished_at - start) // span.bar][row.status] += 1
            assert [counts for _, counts in figures["bars"]] == expected, (key, owner)
            assert sum(sum(counts.values()) for counts in expected) > 0


def test_the_range_is_chosen_in_the_address_and_kept_by_the_status_links(client):
    finished(3, Status.SUCCEEDED, 1)
    html = client.get(reverse("dashboard"), {"activity": "7d"}).content.decode()
    assert "Activity, last 7 days" in html
    assert re.search(r'<a href="/\?activity=7d" aria-current="true">7 d</a>', html)
    assert 'href="/?status=succeeded&amp;activity=7d"' in html
    assert 'hx-get="/computations/?activity=7d"' in html, "the polls keep it"
    refused = client.get(reverse("dashboard"), {"activity": "1y"})
    assert "Activity, last 60 minutes" in refused.content.decode()
