"""Every way a run can end becomes one outcome, the same for the instant and the long path (tasks.jobs.compute)."""

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.db import OperationalError

from tasks import jobs
from tasks.models import Status
from tasks.operations import REGISTRY, TimeLimitExceeded


def no_progress(done: int, total: int) -> None:
    pass


def test_a_result_succeeds():
    outcome = jobs.compute("add", {"x": "1.5", "y": "2"}, work_seconds=0, progress=no_progress)
    assert (outcome.status, outcome.result, outcome.error) == (Status.SUCCEEDED, "3.5", None)


def test_an_operation_error_fails_with_its_message():
    outcome = jobs.compute("divide", {"x": "1", "y": "0"}, work_seconds=0, progress=no_progress)
    assert outcome.status == Status.FAILED
    assert outcome.error.message == "Division by zero is not possible."


def test_an_unknown_operation_fails_without_running():
    outcome = jobs.compute("no-such-thing", {}, work_seconds=0, progress=no_progress)
    assert outcome.status == Status.FAILED
    assert outcome.error.params == {"name": "no-such-thing"}


def raising(error: BaseException):
    def progress(done: int, total: int) -> None:
        raise error

    return progress


def test_celery_s_soft_limit_is_the_computation_s_time_limit():
    outcome = jobs.compute("count_primes", {"n": "100000"}, work_seconds=5, progress=raising(SoftTimeLimitExceeded()))
    assert isinstance(outcome.error, TimeLimitExceeded)
    assert outcome.error.params == {"seconds": REGISTRY["count_primes"].limit_for(5)}


def test_an_unexpected_error_fails_with_a_general_message(caplog):
    outcome = jobs.compute("count_primes", {"n": "100000"}, work_seconds=0, progress=raising(KeyError("bug")))
    assert outcome.error.message == jobs.UNEXPECTED
    assert "count_primes raised" in caplog.text


@pytest.mark.parametrize("error", [jobs.RunStopped(), OperationalError("gone")])
def test_a_stop_or_a_lost_database_is_no_outcome(error):
    with pytest.raises(type(error)):
        jobs.compute("count_primes", {"n": "100000"}, work_seconds=0, progress=raising(error))
