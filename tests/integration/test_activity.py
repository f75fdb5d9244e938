"""The Activity panel: finished per minute over the last hour, stacked by status, and run time percentiles,
as server-rendered SVG with the same figures in tables."""

import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone, translation

from dashboard import activity
from tasks import changes
from tasks.models import Computation, Status

pytestmark = pytest.mark.django_db


def finished(minutes_ago: float, status: str, seconds: float, operation: str = "add") -> Computation:
    end = timezone.now() - timedelta(minutes=minutes_ago)
    return Computation.objects.create(
        operation=operation, inputs={"x": "1", "y": "1"}, status=status, started_at=end - timedelta(seconds=seconds),
        finished_at=end,
    )  # fmt: skip


def test_the_panel_counts_the_last_hour_by_minute_and_status():
    for _ in range(3):
        finished(5, Status.SUCCEEDED, 1)
    finished(5, Status.FAILED, 1)
    finished(20, Status.CANCELLED, 1)
    finished(90, Status.SUCCEEDED, 1)  # outside the hour
    figures = activity.activity()
    assert figures["totals"] == {"succeeded": 3, "failed": 1, "cancelled": 1}
    assert figures["busiest"] == 4
    assert len(figures["bars"]) == 60
    busy = [bar for bar in figures["bars"] if bar.total]
    assert [bar.total for bar in busy] == [1, 4]
    assert [bar.counts for bar in busy] == [[0, 0, 1], [3, 1, 0]], "succeeded, failed, cancelled"
    heights = {segment.status: segment.height for segment in busy[1].segments}
    assert heights == {"succeeded": 90.0, "failed": 30.0}


def test_run_time_percentiles_per_operation():
    for seconds in (1, 2, 3, 4, 100):
        finished(10, Status.SUCCEEDED, seconds, operation="factorize")
    finished(10, Status.FAILED, 500, operation="factorize")  # failures are not run times
    rows = activity.activity()["run_time_rows"]
    assert len(rows) == 1
    label, count, p50, p95 = rows[0]
    assert (label, count, p50) == ("Factorize n into primes", 5, 3.0) and 80 < p95 <= 100


def test_the_list_draws_it_as_accessible_svg(client):
    succeeded = finished(1, Status.SUCCEEDED, 2)
    finished(1, Status.CANCELLED, 2)
    cache.clear()
    html = client.get(reverse("computations"), HTTP_HX_REQUEST="true").content.decode()
    assert '<svg class="chart"' in html and 'role="img" aria-labelledby="activity-title activity-desc"' in html
    assert "In the last hour: 1 succeeded, 0 failed, 1 cancelled" in html
    assert html.count('<rect class="bar bar-succeeded"') == 1
    assert re.search(r"<title>\d\d:\d\d: Cancelled 1</title></rect>", html), "each segment names its status"
    minute = timezone.localtime(succeeded.finished_at).strftime("%H:%M")
    assert re.search(rf'<tr><th scope="row">{minute}</th><td>1</td><td>0</td><td>1</td></tr>', html), (
        "the screen readers' table has a column per status, zeros included"
    )
    assert "<caption>Computations finished per minute</caption>" in html
    assert "Run time of the computations that succeeded in the last hour" in html and "2.000 s" in html


def test_due_figures_are_worked_out_by_one_process_while_the_others_show_the_last_ones():
    finished(3, Status.SUCCEEDED, 1)
    assert activity.activity()["totals"]["succeeded"] == 1
    finished(3, Status.SUCCEEDED, 1)
    assert activity.activity()["totals"]["succeeded"] == 1, "shared for ACTIVITY_SECONDS"
    key = f"{activity.ACTIVITY_KEY}:all"
    cached = cache.get(key)
    cache.set(key, {**cached, "at": cached["at"] - activity.ACTIVITY_SECONDS - 1})
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
    assert "Activity, last 60 minutes" in english and "Activity, last 60 minutes" not in chinese
    finished(1, Status.SUCCEEDED, 1)
    assert activity.panel() == english and len(renders) == 2, "the same figures: the HTML from the cache"
    key = f"{activity.ACTIVITY_KEY}:all"
    cache.set(key, {**cache.get(key), "at": 0})  # due, and this process refreshes them
    assert "2 succeeded" in activity.panel()


def test_the_last_poll_brings_the_final_figures(client):
    """While work runs the figures are shared for ACTIVITY_SECONDS; the poll that finds nothing left in flight
    answers 286 (the polling stops), so it must carry the figures of what just ended, not those of before."""
    finished(2, Status.SUCCEEDED, 1)
    running = Computation.objects.create(operation="add", inputs={"x": "1", "y": "1"}, status=Status.RUNNING)
    changes.record_change()
    polled = client.get(reverse("computations"), HTTP_HX_REQUEST="true")
    assert polled.status_code == 200 and "In the last hour: 1 succeeded" in polled.content.decode()
    Computation.objects.filter(pk=running.pk).update(status=Status.SUCCEEDED, finished_at=timezone.now())
    changes.record_change()
    last = client.get(reverse("computations"), HTTP_HX_REQUEST="true")
    assert last.status_code == 286
    assert "In the last hour: 2 succeeded" in last.content.decode()
    assert re.search(r"Succeeded <strong>2</strong>", last.content.decode()), "the strip agrees"
