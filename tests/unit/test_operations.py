"""The operations are pure functions: tested here without Django, Celery or a database."""

import math
import time
from decimal import Decimal

import pytest

from tasks import operations
from tasks.operations import REGISTRY, OperationError, TimeLimitExceeded


def compute(name: str, **inputs: object) -> str:
    return REGISTRY[name].function(inputs, lambda done, total: None)


@pytest.mark.parametrize(
    ("name", "x", "y", "expected"),
    [
        ("add", "1.5", "2.25", "3.75"),
        ("add", "-1000000000000", "1000000000000", "0"),
        ("subtract", "0.1", "0.3", "-0.2"),
        ("multiply", "999999999999.999999", "999999999999.999999", "999999999999999998000000.000000000001"),
        ("multiply", "2.50", "4", "10"),
        ("divide", "1", "4", "0.25"),
        ("divide", "10", "-4", "-2.5"),
        ("divide", "1", "3", "0." + "3" * 40),
    ],
)
def test_arithmetic_is_exact_on_decimals(name, x, y, expected):
    assert compute(name, x=Decimal(x), y=Decimal(y)) == expected


def test_division_by_zero_is_refused_before_running():
    with pytest.raises(OperationError) as refused:
        REGISTRY["divide"].validate({"x": Decimal(1), "y": Decimal(0)})
    assert refused.value.field == "y"
    assert "zero" in str(refused.value)
    REGISTRY["divide"].validate({"x": Decimal(1), "y": Decimal("0.000001")})


@pytest.mark.parametrize(("n", "expected"), [(2, 0), (3, 1), (10, 4), (100, 25), (262_145, 23_000), (10**7, 664_579)])
def test_count_primes_below_n(n, expected):
    assert compute("count_primes", n=n) == str(expected)


def test_count_primes_across_segment_boundaries_matches_a_plain_sieve():
    limit = (1 << 18) * 3 + 17
    sieve = bytearray([1]) * limit
    sieve[0:2] = b"\x00\x00"
    for p in range(2, math.isqrt(limit) + 1):
        if sieve[p]:
            sieve[p * p :: p] = bytes(len(range(p * p, limit, p)))
    assert compute("count_primes", n=limit) == str(sieve.count(1))


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (1, "1"),
        (2, "2"),
        (97, "97"),
        (360, "2^3 × 3^2 × 5"),
        (600_851_475_143, "71 × 839 × 1471 × 6857"),
        (10**15, "2^15 × 5^15"),
        (999_999_999_999_989, "999999999999989"),
        (49 * 999_983, "7^2 × 999983"),
    ],
)
def test_factorize(n, expected):
    assert compute("factorize", n=n) == expected


def test_estimate_pi_is_close_and_repeatable_for_a_seed():
    first = compute("estimate_pi", samples=400_000, seed=7)
    assert abs(float(first) - math.pi) < 0.01
    assert compute("estimate_pi", samples=400_000, seed=7) == first
    assert compute("estimate_pi", samples=400_000, seed=8) != first


@pytest.mark.parametrize("name", ["count_primes", "estimate_pi", "factorize"])
def test_long_operations_report_progress_up_to_the_total(name):
    spec = REGISTRY[name]
    inputs = {"n": 3_000_000, "samples": 300_000, "seed": 1} if name != "factorize" else {"n": 999_999_999_989}
    reports: list[tuple[int, int]] = []
    spec.function({key: inputs[key] for key in (i.name for i in spec.inputs)}, lambda d, t: reports.append((d, t)))
    assert spec.reports_progress
    assert len(reports) >= 2
    fractions = [done / total for done, total in reports]
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1


def test_every_input_is_bounded_and_every_default_lies_within_its_bounds():
    for spec in REGISTRY.values():
        assert spec.time_limit > 0
        for field in spec.inputs:
            assert field.minimum < field.maximum
            if field.default is not None:
                assert field.minimum <= field.default <= field.maximum


def test_inputs_round_trip_through_json_exactly():
    spec = REGISTRY["multiply"]
    values = {"x": Decimal("0.000001"), "y": Decimal("-123456789012.5")}
    stored = spec.serialize_inputs(values)
    assert stored == {"x": "0.000001", "y": "-123456789012.5"}
    assert spec.parse_inputs(stored) == values
    assert REGISTRY["factorize"].parse_inputs({"n": 10**17}) == {"n": 10**17}


def test_run_reports_one_progress_across_simulated_work_and_computation():
    reports: list[float] = []
    result = operations.run(
        REGISTRY["count_primes"],
        {"n": 1_000_000},
        work_seconds=1,
        report_progress=lambda done, total: reports.append(done / total),
    )
    assert result == "78498"
    assert reports == sorted(reports)
    assert any(0 < r < 0.5 for r in reports), "the work phase fills the first half"
    assert any(0.5 < r < 1 for r in reports) or reports[-1] == 1
    assert reports[-1] == 1


def test_run_of_an_instant_operation_with_work_reports_the_work_as_the_whole_bar():
    reports: list[float] = []
    result = operations.run(
        REGISTRY["add"],
        {"x": Decimal(2), "y": Decimal(3)},
        work_seconds=1,
        report_progress=lambda done, total: reports.append(done / total),
    )
    assert result == "5"
    assert reports[0] < 0.5 and reports[-1] == 1


def stepping(steps: int, pause: float) -> operations.Operation:
    """An operation of `steps` steps, `pause` seconds each, reporting before each; its time limit 1 s."""

    def function(inputs: operations.Inputs, report: operations.ProgressCallback) -> str:
        for step in range(steps):
            report(step, steps)
            time.sleep(pause)
        return "done"

    return operations.Operation("stepping", "Stepping", (), function, time_limit=1, reports_progress=True)


def test_a_run_past_its_time_limit_stops_at_its_next_report():
    slow = stepping(10, 0.3)
    with pytest.raises(TimeLimitExceeded) as stopped:
        operations.run(slow, {}, work_seconds=0, report_progress=lambda done, total: None)
    assert "1 seconds" in str(stopped.value)


def test_time_spent_recording_progress_does_not_count_against_the_limit():
    """A report that waits on the database (an outage, a restart) delays the run; it does not fail it."""
    quick = stepping(4, 0.1)
    assert operations.run(quick, {}, work_seconds=0, report_progress=lambda done, total: time.sleep(0.4)) == "done"


def test_a_report_that_raises_stops_the_operation_there():
    class Stop(Exception):
        pass

    calls = 0

    def report(done: int, total: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise Stop

    with pytest.raises(Stop):
        operations.run(
            REGISTRY["estimate_pi"],
            {"samples": 10_000_000, "seed": 1},
            work_seconds=0,
            report_progress=report,
        )
    assert calls == 3
