"""When a schedule is due next: once at a time, every N minutes or hours counted from its creation, or by a cron
expression read in TIME_ZONE."""

import datetime
from zoneinfo import ZoneInfo

import pytest

from tasks.models import Schedule, parse_cron

UTC = datetime.UTC
CREATED = datetime.datetime(2026, 12, 1, 8, 3, 41, tzinfo=UTC)


def schedule(**fields: object) -> Schedule:
    return Schedule(name="nightly", operation="add", inputs={"x": "1", "y": "2"}, created_at=CREATED, **fields)


def test_once_is_due_at_its_time_and_then_never():
    at = datetime.datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    once = schedule(kind=Schedule.Kind.ONCE, run_at=at)
    assert once.next_after(CREATED) == at
    assert once.next_after(at) is None


def test_every_counts_from_the_minute_of_its_creation_and_does_not_drift():
    every = schedule(kind=Schedule.Kind.EVERY, every=5, unit=Schedule.Unit.MINUTES)
    start = CREATED.replace(second=0)
    assert every.next_after(CREATED) == start + datetime.timedelta(minutes=5)
    # Fired late, the next due time is still on the grid.
    late = start + datetime.timedelta(minutes=5, seconds=47)
    assert every.next_after(late) == start + datetime.timedelta(minutes=10)
    # After three hours down: the first due time after now, not one per missed period.
    assert every.next_after(start + datetime.timedelta(hours=3, minutes=1)) == start + datetime.timedelta(
        hours=3, minutes=5
    )
    hourly = schedule(kind=Schedule.Kind.EVERY, every=2, unit=Schedule.Unit.HOURS)
    assert hourly.next_after(CREATED) == start + datetime.timedelta(hours=2)


def test_cron_is_read_in_the_time_zone(settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    nightly = schedule(kind=Schedule.Kind.CRON, cron="0 2 * * *")
    due = nightly.next_after(CREATED)  # 16:03 in Shanghai: next is 02:00 there tomorrow
    assert due == datetime.datetime(2026, 12, 2, 2, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert nightly.next_after(due) == due + datetime.timedelta(days=1)
    every_five = schedule(kind=Schedule.Kind.CRON, cron="*/5 * * * *")
    assert every_five.next_after(CREATED) == datetime.datetime(2026, 12, 1, 8, 5, tzinfo=UTC)
    weekdays = schedule(kind=Schedule.Kind.CRON, cron="30 9 * * 1-5")
    saturday = datetime.datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    assert weekdays.next_after(saturday) == datetime.datetime(2026, 12, 7, 9, 30, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.mark.parametrize("expression", ["", "* * * *", "61 * * * *", "* 25 * * *", "a b c d e", "* * * * * *"])
def test_a_bad_cron_expression_is_refused(expression):
    with pytest.raises(ValueError):
        parse_cron(expression)
