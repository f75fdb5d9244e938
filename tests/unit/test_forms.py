"""The submission form is built from the registry: its fields, bounds and messages follow each operation."""

from decimal import Decimal

import pytest

from dashboard.computations.forms import ComputationForm, ListFilterForm


def errors(data: dict[str, str]) -> dict[str, list[str]]:
    form = ComputationForm(data)
    assert not form.is_valid()
    return form.errors


def test_each_operation_gets_the_fields_of_its_inputs():
    common = ["work_seconds", "idempotency_key"]
    assert list(ComputationForm(operation="divide").fields) == ["operation", "x", "y", *common]
    assert list(ComputationForm(operation="estimate_pi").fields) == ["operation", "samples", "seed", *common]
    assert list(ComputationForm(operation="no-such-thing").fields) == ["operation", "x", "y", *common]


def test_each_fresh_form_carries_a_new_idempotency_key():
    first, second = ComputationForm(), ComputationForm()
    assert first["idempotency_key"].value() != second["idempotency_key"].value()
    bound = ComputationForm({"operation": "add", "x": "1", "y": "2", "idempotency_key": "not-a-uuid"})
    assert "idempotency_key" in bound.errors


def test_a_valid_submission_gives_typed_inputs_and_work():
    form = ComputationForm({"operation": "multiply", "x": "1.25", "y": "-3", "work_seconds": "5"})
    assert form.is_valid(), form.errors
    assert form.spec.name == "multiply"
    assert form.inputs == {"x": Decimal("1.25"), "y": Decimal(-3)}
    assert form.work == 5


def test_work_is_optional_and_defaults_to_none_at_all():
    form = ComputationForm({"operation": "factorize", "n": "360"})
    assert form.is_valid(), form.errors
    assert form.inputs == {"n": 360}
    assert form.work == 0


def test_missing_inputs_are_required():
    assert set(errors({"operation": "add", "x": "1"})) == {"y"}
    assert "required" in errors({"operation": "add"})["x"][0]


@pytest.mark.parametrize("value", ["abc", "1,5", "NaN", "Infinity", "-inf", "1e5000", "0x10", "", " "])
def test_non_numbers_are_refused(value):
    assert "x" in errors({"operation": "add", "x": value, "y": "1"})


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"operation": "add", "x": "1000000000000.000001", "y": "0"}, "x"),
        ({"operation": "add", "x": "-1000000000001", "y": "0"}, "x"),
        ({"operation": "add", "x": "0.0000001", "y": "0"}, "x"),
        ({"operation": "count_primes", "n": "1000000001"}, "n"),
        ({"operation": "count_primes", "n": "1"}, "n"),
        ({"operation": "count_primes", "n": "2.5"}, "n"),
        ({"operation": "estimate_pi", "samples": "0", "seed": "1"}, "samples"),
        ({"operation": "estimate_pi", "samples": "10", "seed": "-1"}, "seed"),
        ({"operation": "factorize", "n": str(10**17 + 1)}, "n"),
        ({"operation": "add", "x": "1", "y": "1", "work_seconds": "61"}, "work_seconds"),
        ({"operation": "add", "x": "1", "y": "1", "work_seconds": "-1"}, "work_seconds"),
    ],
)
def test_out_of_bounds_values_are_refused_with_the_bound(data, field):
    assert field in errors(data)


def test_unknown_operation_is_refused():
    assert "operation" in errors({"operation": "exec", "x": "1", "y": "2"})
    assert "operation" in errors({"x": "1", "y": "2"})


def test_division_by_zero_is_refused_on_the_divisor():
    assert errors({"operation": "divide", "x": "1", "y": "0"}) == {"y": ["Division by zero is not possible."]}
    assert errors({"operation": "divide", "x": "1", "y": "-0.000"}) == {"y": ["Division by zero is not possible."]}


def test_list_filters_accept_known_values_and_refuse_others():
    assert ListFilterForm({"status": "failed", "operation": "divide", "before": "10"}).is_valid()
    assert ListFilterForm({}).is_valid()
    for bad in (
        {"status": "lost"},
        {"operation": "rm"},
        {"before": "x"},
        {"before": "0"},
        {"before": "5", "after": "2"},
    ):
        assert not ListFilterForm(bad).is_valid(), bad
