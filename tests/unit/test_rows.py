"""The values the list shows as people scan them: grouped digits, short durations, how long it waited or ran."""

from datetime import datetime, timedelta

import pytest
from django.utils import formats, timezone, translation

from dashboard.computations.rows import Texts, _cut, _timing, duration, grouped, inputs_text
from tasks.models import Computation, Status


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1234567", "1,234,567"),
        ("-1234567.125", "-1,234,567.125"),
        ("0.0001234", "0.0001234"),
        ("999", "999"),
        ("2^3 × 1234567", "2^3 × 1,234,567"),
        ("", ""),
    ],
)
def test_long_numbers_are_grouped(text, expected):
    assert grouped(text) == expected


def test_grouping_follows_the_language():
    with translation.override("zh-hans"):
        assert grouped("1234567.5") == "1,234,567.5"


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0.0042, "4 ms"), (0.36, "360 ms"), (1.46, "1.5 s"), (12.4, "12 s"), (200, "3 min 20 s"), (7500, "2 h 5 min")],
)
def test_durations_are_short(seconds, expected):
    assert duration(seconds) == expected


def test_inputs_read_as_labelled_grouped_values():
    computation = Computation(operation="add", inputs={"x": "1500000", "y": "2.25"})
    assert inputs_text(computation) == "x = 1,500,000 · y = 2.25"


def test_the_time_column_says_waiting_running_or_the_run_time():
    now = timezone.now()
    queued = Computation(status=Status.QUEUED, created_at=now - timedelta(seconds=5), enqueued_at=None)
    running = Computation(status=Status.RUNNING, started_at=now - timedelta(seconds=75))
    ended = Computation(status=Status.SUCCEEDED, started_at=now - timedelta(seconds=3), finished_at=now)
    never_ran = Computation(status=Status.CANCELLED, started_at=None, finished_at=now)
    assert _timing(queued, now) == "waiting 5.0 s"
    assert _timing(running, now) == "running 1 min 15 s"
    assert _timing(ended, now) == "3.0 s"
    assert _timing(never_ran, now) == ""


def test_a_long_text_is_cut_with_more_of_it_as_its_title():
    short, wider, long = _cut("3.75", 40), _cut("x = 1,234,567 · y = 1,234,567", 40), _cut("9" * 500, 40)
    assert (short.text, short.whole) == ("3.75", "")
    assert wider.text == wider.whole, "a cell may cut what the server did not: its title has it all"
    assert len(long.text) == 40 and long.text.endswith("…") and len(long.whole) == 300


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_exact_time_is_djangos_date_format_at_less_cost(language):
    start = timezone.make_aware(datetime(2026, 12, 31, 23, 59, 58), timezone.get_fixed_timezone(0))
    with translation.override(language):
        texts = Texts()
        assert texts.date_part is not None, "the fast path applies to our formats"
        for seconds in range(0, 400_000, 7_919):
            local = timezone.localtime(start + timedelta(seconds=seconds), texts.zone)
            assert texts.exact(local) == formats.date_format(local, "DATETIME_FORMAT")
