"""Two beats on the local stack: each schedule's due time fires once while both run, and when the active one is
killed (kill -9) the standby takes over within a minute."""

import datetime
import os
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest
import requests

from tests.helpers import wait_for
from tools.stack import ROOT, START, Stack

from .test_stack import session_with_csrf

pytestmark = pytest.mark.stack


@pytest.fixture
def second_beat(stack: Stack, tmp_path) -> Iterator[subprocess.Popen]:
    """A second beat beside the stack's, as `docker compose up --scale beat=2` runs it."""
    log = (tmp_path / "beat2.log").open("wb")
    process = subprocess.Popen(
        [str(START / "beat")],
        cwd=ROOT,
        env={**stack.environment, "LOG_LEVEL": "DEBUG"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    yield process
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(20)


def schedule_once(stack: Stack, session: requests.Session, token: str, at: datetime.datetime, name: str) -> int:
    data = {
        "name": name,
        "operation": "add",
        "x": "1",
        "y": "2",
        "kind": "once",
        "unit": "minutes",
        "run_at": at.strftime("%Y-%m-%d %H:%M:%S"),
        "catch_up": "on",
    }
    answer = session.post(f"{stack.url}/api/schedules", data=data, headers={"X-CSRFToken": token}, timeout=10)
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def runs(stack: Stack, session: requests.Session, pk: int) -> list[dict]:
    return session.get(f"{stack.url}/api/schedules/{pk}", timeout=10).json()["runs"]


def test_two_beats_fire_each_due_time_once_and_the_standby_takes_over(stack: Stack, second_beat):
    session, token = session_with_csrf(stack)
    now = datetime.datetime.now(datetime.UTC)
    # Due every 2 s for half a minute, while both beats run.
    both = [
        schedule_once(stack, session, token, now + datetime.timedelta(seconds=4 + 2 * i), f"both {i}")
        for i in range(15)
    ]
    wait_for(lambda: all(runs(stack, session, pk) for pk in both), timeout=60, interval=1)
    time.sleep(6)  # time for a second firing, were there one
    fired = {pk: runs(stack, session, pk) for pk in both}
    assert all(len(each) == 1 and each[0]["outcome"] == "submitted" for each in fired.values()), fired
    late = [
        (datetime.datetime.fromisoformat(each[0]["fired_at"]) - datetime.datetime.fromisoformat(each[0]["due_at"]))
        for each in fired.values()
    ]
    assert max(late) < datetime.timedelta(seconds=10), "fired within a tick or two of its due time"

    # The stack's beat started first and holds the lock: killed, the second one takes over.
    assert second_beat.poll() is None
    stack.signal("beat", signal.SIGKILL)
    killed = datetime.datetime.now(datetime.UTC)
    after = [
        schedule_once(stack, session, token, killed + datetime.timedelta(seconds=3 + 3 * i), f"after {i}")
        for i in range(20)
    ]
    try:
        first = wait_for(lambda: next((pk for pk in after if runs(stack, session, pk)), None), timeout=70, interval=1)
        taken_over = datetime.datetime.fromisoformat(runs(stack, session, first)[0]["fired_at"]) - killed
        print(f"\nthe standby beat fired {taken_over.total_seconds():.1f} s after the active one was killed")
        assert taken_over < datetime.timedelta(minutes=1)
        wait_for(lambda: all(runs(stack, session, pk) for pk in after), timeout=90, interval=1)
        assert all(len(runs(stack, session, pk)) == 1 for pk in after), "each once, those missed meanwhile too"
    finally:
        stack.processes["beat"].wait(10)
        stack.start("beat")  # the stack's beat again, for the tests after this one (now the standby)
