"""A workflow as submitted, checked whole before anything is written: its steps (numbered from 1 in the order given),
each an operation with inputs that are values or the result of another step, and what each waits for.

Pure Python over the operation registry, as tasks.operations is, so the API, the builder page and the tests share one
check. Every problem is reported, each naming its step and input, as OperationErrors whose messages are translated
where they are shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from ..operations import MAX_VALUES, REGISTRY, Input, Number, Operation, OperationError, gettext_noop

MAX_STEPS = 100
# Links between steps (a result taken, or a wait): enough for any fan-in or chain of 100 steps, and a bound on what
# the page draws (a graph of every pair of 100 steps would take seconds to lay out).
MAX_EDGES = 400
MAX_WORK_SECONDS = 60


@dataclass(frozen=True)
class ResultOf:
    """An input's value to be: the result of step `step`."""

    step: int


type Given = Number | ResultOf


@dataclass(frozen=True)
class Edge:
    """Step `target` takes step `source`'s result as `input` (at `position` of one that takes several), or, with no
    input, waits for it."""

    source: int
    target: int
    input: str = ""
    position: int | None = None


@dataclass(frozen=True)
class Step:
    number: int
    operation: Operation
    inputs: Mapping[str, Given | list[Given]]
    after: tuple[int, ...] = ()
    work_seconds: int = 0

    def edges(self) -> Iterable[Edge]:
        for name, given in self.inputs.items():
            if isinstance(given, list):
                yield from (
                    Edge(each.step, self.number, name, position)
                    for position, each in enumerate(given)
                    if isinstance(each, ResultOf)
                )
            elif isinstance(given, ResultOf):
                yield Edge(given.step, self.number, name)
        yield from (Edge(step, self.number) for step in self.after)

    def literal_inputs(self) -> dict[str, object]:
        """The inputs as the row keeps them until its results come: values serialized, a result to come None."""
        literal: dict[str, object] = {}
        for spec in self.operation.inputs:
            given = self.inputs[spec.name]
            if isinstance(given, list):
                literal[spec.name] = [
                    None if isinstance(each, ResultOf) else spec.serialize_one(each) for each in given
                ]
            else:
                literal[spec.name] = None if isinstance(given, ResultOf) else spec.serialize(given)
        return literal


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    name: str = ""
    edges: tuple[Edge, ...] = field(default=())

    def predecessors(self, number: int) -> set[int]:
        return {edge.source for edge in self.edges if edge.target == number}


class PlanError(Exception):
    """The workflow as submitted cannot run; `problems` says every reason, each an OperationError with a `step` (and
    the input at fault as its `field`), or with none for the workflow as a whole."""

    def __init__(self, problems: Sequence[StepProblem]):
        super().__init__("; ".join(str(problem) for problem in problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class StepProblem:
    step: int | None  # None: the workflow as a whole
    error: OperationError

    @property
    def input(self) -> str | None:
        return self.error.field

    def __str__(self) -> str:
        where = f"step {self.step}" + (f", {self.input}" if self.input else "") if self.step else "workflow"
        return f"{where}: {self.error}"


def plan(steps: Sequence[Mapping[str, object]], *, name: str = "") -> Plan:
    """The workflow these steps make, each {"operation", "inputs": {name: value | {"step": n} | [...]}, "after":
    [n, ...], "work_seconds"}; raises PlanError with every problem found."""
    problems: list[StepProblem] = []
    if not steps:
        problems.append(StepProblem(None, OperationError(gettext_noop("A workflow needs at least one step."))))
    if len(steps) > MAX_STEPS:
        message = gettext_noop("A workflow takes at most %(limit)s steps; this one has %(count)s.")
        problems.append(StepProblem(None, OperationError(message, {"limit": MAX_STEPS, "count": len(steps)})))
    if problems:
        raise PlanError(problems)
    read = [_step(number, raw, len(steps), problems) for number, raw in enumerate(steps, start=1)]
    checked = [step for step in read if step is not None]
    if len(checked) == len(read):
        _check_results_fit(checked, problems)
        _check_acyclic(checked, problems)
    if problems:
        raise PlanError(problems)
    edges = tuple(edge for step in checked for edge in step.edges())
    if len(edges) > MAX_EDGES:
        message = gettext_noop("A workflow takes at most %(limit)s links between its steps; this one has %(count)s.")
        raise PlanError([StepProblem(None, OperationError(message, {"limit": MAX_EDGES, "count": len(edges)}))])
    return Plan(tuple(checked), name=name.strip()[:100], edges=edges)


def _problem(problems: list[StepProblem], step: int, message: str, params: Mapping | None = None, field=None) -> None:
    problems.append(StepProblem(step, OperationError(message, params, field)))


def _step(number: int, raw: Mapping[str, object], count: int, problems: list[StepProblem]) -> Step | None:
    before = len(problems)
    operation = REGISTRY.get(str(raw.get("operation") or ""))
    if operation is None:
        _problem(problems, number, gettext_noop("There is no operation of this name."), field="operation")
        return None
    given = raw.get("inputs") or {}
    if not isinstance(given, Mapping):
        _problem(problems, number, gettext_noop("The inputs must be given by name."), field="inputs")
        return None
    for unknown in sorted(set(given) - {spec.name for spec in operation.inputs}):
        _problem(problems, number, gettext_noop("%(input)s is not an input of this operation."), {"input": unknown})
    inputs: dict[str, Given | list[Given]] = {}
    for spec in operation.inputs:
        if spec.name not in given or given[spec.name] in (None, ""):
            _problem(problems, number, gettext_noop("%(input)s needs a value."), {"input": spec.name}, spec.name)
            continue
        value = _input(spec, given[spec.name], number, count, problems)
        if value is not None:
            inputs[spec.name] = value
    after = _after(raw.get("after") or (), number, count, problems)
    work = raw.get("work_seconds") or 0
    if not isinstance(work, int) or isinstance(work, bool) or not 0 <= work <= MAX_WORK_SECONDS:
        message = gettext_noop("The simulated work must be a whole number of seconds from 0 to %(limit)s.")
        _problem(problems, number, message, {"limit": MAX_WORK_SECONDS}, "work_seconds")
    if len(problems) > before:
        return None
    step = Step(number, operation, inputs, after, work)
    if not any(True for _ in step.edges()):
        # Its inputs are all values: the operation's own check (a division by zero) applies now.
        try:
            operation.validate(operation.parse_inputs(step.literal_inputs()))
        except OperationError as error:
            problems.append(StepProblem(number, error))
            return None
    return step


def _input(spec: Input, raw: object, number: int, count: int, problems: list[StepProblem]) -> Given | list | None:
    if spec.many:
        if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_VALUES:
            message = gettext_noop("%(input)s takes a list of 1 to %(limit)s values or results.")
            _problem(problems, number, message, {"input": spec.name, "limit": MAX_VALUES}, spec.name)
            return None
        values = [_one(spec, each, number, count, problems) for each in raw]
        return None if any(value is None for value in values) else values
    return _one(spec, raw, number, count, problems)


def _one(spec: Input, raw: object, number: int, count: int, problems: list[StepProblem]) -> Given | None:
    if isinstance(raw, Mapping):
        source = raw.get("step")
        if set(raw) != {"step"} or not isinstance(source, int) or isinstance(source, bool):
            message = gettext_noop('%(input)s: a result is written {"step": n}, n a step\'s number.')
            _problem(problems, number, message, {"input": spec.name}, spec.name)
            return None
        if not 1 <= source <= count:
            message = gettext_noop("%(input)s takes the result of step %(source)s, which this workflow does not have.")
            _problem(problems, number, message, {"input": spec.name, "source": source}, spec.name)
            return None
        if source == number:
            message = gettext_noop("%(input)s cannot take the result of its own step.")
            _problem(problems, number, message, {"input": spec.name}, spec.name)
            return None
        return ResultOf(source)
    try:
        value = Decimal(str(raw)) if not isinstance(raw, bool) else None
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite():
        _problem(problems, number, gettext_noop("%(input)s must be a number."), {"input": spec.name}, spec.name)
        return None
    if spec.kind == "integer" and value % 1:
        _problem(problems, number, gettext_noop("%(input)s takes whole numbers only."), {"input": spec.name}, spec.name)
        return None
    if not spec.minimum <= value <= spec.maximum:
        message = gettext_noop("%(input)s must lie between %(minimum)s and %(maximum)s.")
        params = {"input": spec.name, "minimum": spec.minimum, "maximum": spec.maximum}
        _problem(problems, number, message, params, spec.name)
        return None
    return int(value) if spec.kind == "integer" else value


def _after(raw: object, number: int, count: int, problems: list[StepProblem]) -> tuple[int, ...]:
    if not isinstance(raw, list | tuple) or not all(
        isinstance(each, int) and not isinstance(each, bool) for each in raw
    ):
        _problem(problems, number, gettext_noop("What a step waits for is a list of step numbers."), field="after")
        return ()
    for each in raw:
        if not 1 <= each <= count or each == number:
            message = gettext_noop("It waits for step %(source)s, which is not another step of this workflow.")
            _problem(problems, number, message, {"source": each}, "after")
    return tuple(sorted(set(raw)))


def _check_results_fit(steps: Sequence[Step], problems: list[StepProblem]) -> None:
    """An input takes a step's result only if that result is a number (a factorization is text): its bounds and
    whether it is whole are checked when the result comes."""
    by_number = {step.number: step for step in steps}
    for step in steps:
        for edge in step.edges():
            source = by_number[edge.source].operation
            if edge.input and source.result == "text":
                message = gettext_noop("%(input)s takes a number; step %(source)s's result (%(operation)s) is text.")
                params = {"input": edge.input, "source": edge.source, "operation": source.label}
                _problem(problems, step.number, message, params, edge.input)


def _check_acyclic(steps: Sequence[Step], problems: list[StepProblem]) -> None:
    """Kahn's algorithm: the steps never freed of pending predecessors are on a cycle or after one."""
    pending = {step.number: {edge.source for edge in step.edges()} for step in steps}
    ready = [number for number, sources in pending.items() if not sources]
    done: set[int] = set()
    while ready:
        done.add(finished := ready.pop())
        for number, sources in pending.items():
            if finished in sources:
                sources.discard(finished)
                if not sources:
                    ready.append(number)
    for number in sorted(set(pending) - done):
        message = gettext_noop("This step depends on itself, through steps %(cycle)s: a workflow cannot loop.")
        _problem(problems, number, message, {"cycle": ", ".join(map(str, sorted(pending[number])))})
