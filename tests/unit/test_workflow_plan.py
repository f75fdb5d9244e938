"""A workflow checked whole before anything is written: every problem found, each naming its step and input."""

from decimal import Decimal

import pytest

from tasks.workflows.plan import MAX_EDGES, MAX_STEPS, Edge, PlanError, ResultOf, plan


def add(x: object = 1, y: object = 1, **more: object) -> dict:
    return {"operation": "add", "inputs": {"x": x, "y": y}, **more}


def problems(steps: list[dict]) -> list[tuple[int | None, str | None, str]]:
    with pytest.raises(PlanError) as raised:
        plan(steps)
    return [(problem.step, problem.input, str(problem.error)) for problem in raised.value.problems]


def test_a_plan_has_its_edges_its_values_and_its_roots():
    made = plan(
        [
            {"operation": "multiply", "inputs": {"x": "6", "y": 7}},
            {"operation": "factorize", "inputs": {"n": {"step": 1}}},
            {"operation": "sum", "inputs": {"values": [{"step": 1}, "0.5", {"step": 4}]}, "after": [2, 2]},
            add(x={"step": 1}, y=2.25),
        ],
        name="  pipeline  ",
    )
    assert made.name == "pipeline"
    assert made.edges == (
        Edge(1, 2, "n"),
        Edge(1, 3, "values", 0),
        Edge(4, 3, "values", 2),
        Edge(2, 3),
        Edge(1, 4, "x"),
    )
    assert made.steps[0].inputs == {"x": Decimal(6), "y": Decimal(7)}
    assert made.steps[2].inputs["values"] == [ResultOf(1), Decimal("0.5"), ResultOf(4)]
    assert made.steps[2].literal_inputs() == {"values": [None, "0.5", None]}
    assert made.steps[3].literal_inputs() == {"x": None, "y": "2.25"}
    assert made.predecessors(3) == {1, 2, 4} and made.predecessors(1) == set()


def test_a_loop_names_every_step_on_it_or_after_it():
    found = problems([add(x={"step": 3}), add(x={"step": 1}), add(x={"step": 2}), add(x={"step": 3}), add()])
    assert [(step, message.split(":")[0]) for step, _, message in found] == [
        (1, "This step depends on itself, through steps 3"),
        (2, "This step depends on itself, through steps 1"),
        (3, "This step depends on itself, through steps 2"),
        (4, "This step depends on itself, through steps 3"),
    ]


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([add(x={"step": 2})], (1, "x", "x takes the result of step 2, which this workflow does not have.")),
        ([add(y={"step": 1})], (1, "y", "y cannot take the result of its own step.")),
        ([add(x={"step": "1"})], (1, "x", 'x: a result is written {"step": n}, n a step\'s number.')),
        ([add(x={"step": 1, "more": 2}), add()], (1, "x", 'x: a result is written {"step": n}, n a step\'s number.')),
        (
            [{"operation": "factorize", "inputs": {"n": 10}}, add(x={"step": 1})],
            (2, "x", "x takes a number; step 1's result (Factorize n into primes) is text."),
        ),
        ([{"operation": "count_primes", "inputs": {"n": 2.5}}], (1, "n", "n takes whole numbers only.")),
        ([add(x="1e400")], (1, "x", "x must lie between -1000000000000 and 1000000000000.")),
        ([add(x="NaN")], (1, "x", "x must be a number.")),
        ([add(x=True)], (1, "x", "x must be a number.")),
        ([{"operation": "add", "inputs": {"x": 1}}], (1, "y", "y needs a value.")),
        ([{"operation": "add", "inputs": {"x": 1, "y": 1, "z": 1}}], (1, None, "z is not an input of this operation.")),
        ([{"operation": "divide", "inputs": {"x": 1, "y": 0}}], (1, "y", "Division by zero is not possible.")),
        (
            [{"operation": "sum", "inputs": {"values": []}}],
            (1, "values", "values takes a list of 1 to 100 values or results."),
        ),
        (
            [{"operation": "sum", "inputs": {"values": 3}}],
            (1, "values", "values takes a list of 1 to 100 values or results."),
        ),
        ([{"operation": "nothing"}], (1, "operation", "There is no operation of this name.")),
        ([add(after=[1])], (1, "after", "It waits for step 1, which is not another step of this workflow.")),
        ([add(after="2")], (1, "after", "What a step waits for is a list of step numbers.")),
        (
            [add(work_seconds=61)],
            (1, "work_seconds", "The simulated work must be a whole number of seconds from 0 to 60."),
        ),
        ([], (None, None, "A workflow needs at least one step.")),
        ([add()] * (MAX_STEPS + 1), (None, None, "A workflow takes at most 100 steps; this one has 101.")),
    ],
)
def test_each_problem_names_its_step_and_input(steps, expected):
    assert expected in problems(steps)


def test_every_problem_is_reported_at_once():
    found = problems([add(x="a"), {"operation": "nothing"}, add(y={"step": 9})])
    assert [(step, name) for step, name, _ in found] == [(1, "x"), (2, "operation"), (3, "y")]


def test_the_links_between_steps_are_bounded():
    roots = [add() for _ in range(80)]
    fans = [{"operation": "sum", "inputs": {"values": [{"step": n} for n in range(1, 81)]}} for _ in range(6)]
    assert problems(roots + fans) == [
        (None, None, f"A workflow takes at most {MAX_EDGES} links between its steps; this one has 480.")
    ]
