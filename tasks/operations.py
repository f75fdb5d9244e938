"""The computations the dashboard can run: pure functions, their inputs and their bounds.

Nothing here imports Django or Celery. An operation is a plain function `(inputs, report_progress) -> str` with a
declared input schema, so it is tested and reused on its own. Adding a computation is one function, one entry in
REGISTRY, and its test.

Every operation that runs for more than an instant calls `report_progress(done, total)` often (several times a
second): that call is where a cancelled run stops, where the time limit is enforced and where the worker's
heartbeat is written.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Literal

type Number = Decimal | int
type Inputs = Mapping[str, Number]
type ProgressCallback = Callable[[int, int], None]


def gettext_noop(message: str) -> str:
    """Marks a message for translation; it is translated where it is shown (makemessages finds this name)."""
    return message


class OperationError(Exception):
    """Inputs that pass their bounds but cannot be computed, or a run that has to stop.

    `message` is a translatable template (marked with gettext_noop) and `params` fill it, so the message can be
    shown in the reader's language; `field` names the input at fault, if one is.
    """

    def __init__(self, message: str, params: Mapping[str, object] | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.params = dict(params or {})
        self.field = field

    def __str__(self) -> str:
        return self.message % self.params if self.params else self.message


class TimeLimitExceeded(OperationError):
    def __init__(self, seconds: int):
        super().__init__(
            gettext_noop("Stopped: the computation ran longer than its time limit of %(seconds)s seconds."),
            {"seconds": seconds},
        )


MAX_VALUES = 100  # of an input that takes several (a fan-in's), as of a workflow's steps


@dataclass(frozen=True)
class Input:
    name: str
    label: str
    kind: Literal["decimal", "integer"]
    minimum: Number
    maximum: Number
    default: Number | None = None
    help_text: str = ""
    # Takes 1 to MAX_VALUES values, each within the bounds: a fan-in's input, which a workflow fills with the results
    # of several steps.
    many: bool = False

    def parse(self, raw: object) -> Number | list[Number]:
        """Reads a stored value back (JSON keeps decimals as strings, so they stay exact)."""
        if self.many:
            return [self.parse_one(each) for each in raw]  # type: ignore[union-attr]
        return self.parse_one(raw)

    def parse_one(self, raw: object) -> Number:
        return Decimal(str(raw)) if self.kind == "decimal" else int(str(raw))

    def serialize(self, value: Number | list[Number]) -> str | int | list[str | int]:
        if self.many:
            return [self.serialize_one(each) for each in value]  # type: ignore[union-attr]
        return self.serialize_one(value)  # type: ignore[arg-type]

    def serialize_one(self, value: Number) -> str | int:
        return str(value) if self.kind == "decimal" else int(value)

    def accept_result(self, result: str, *, step: int) -> Number:
        """Another computation's result as a value of this input (a workflow passes it on): a number of its kind
        within its bounds, or an OperationError that says which step's result could not be taken, and why."""
        try:
            value = Decimal(result)
        except ArithmeticError:
            value = None
        params = {"step": step, "input": self.name, "result": result[:40]}
        if value is None or not value.is_finite():
            raise OperationError(gettext_noop("The result of step %(step)s (%(result)s) is not a number."), params)
        if self.kind == "integer" and value % 1:
            raise OperationError(
                gettext_noop("The result of step %(step)s (%(result)s) is not a whole number, as %(input)s must be."),
                params,
                self.name,
            )
        if not self.minimum <= value <= self.maximum:
            raise OperationError(
                gettext_noop("The result of step %(step)s (%(result)s) is outside %(minimum)s to %(maximum)s."),
                {**params, "minimum": self.minimum, "maximum": self.maximum},
                self.name,
            )
        return int(value) if self.kind == "integer" else value


@dataclass(frozen=True)
class Operation:
    name: str
    label: str
    inputs: tuple[Input, ...]
    function: Callable[[Inputs, ProgressCallback], str]
    # Seconds the computation itself may take; simulated work comes on top.
    time_limit: int = 5
    # Whether the function reports progress itself (the long ones); an instant one is a single step.
    reports_progress: bool = False
    # Raises OperationError for inputs that are within bounds but cannot be computed (division by zero).
    check: Callable[[Inputs], None] | None = None
    # What its result is: a number another computation's input may take (a workflow's edge), or text that none may.
    result: Literal["decimal", "integer", "text"] = "decimal"

    def parse_inputs(self, raw: Mapping[str, object]) -> dict[str, Number]:
        return {spec.name: spec.parse(raw[spec.name]) for spec in self.inputs}

    def serialize_inputs(self, values: Inputs) -> dict[str, str | int]:
        return {spec.name: spec.serialize(values[spec.name]) for spec in self.inputs}

    def validate(self, values: Inputs) -> None:
        if self.check is not None:
            self.check(values)

    def limit_for(self, work_seconds: int) -> int:
        """Seconds a run may take: the operation's own limit, plus its simulated work."""
        return self.time_limit + work_seconds

    def is_instant(self, work_seconds: int) -> bool:
        """Computed in an instant: no simulated work and no progress to report (the arithmetic)."""
        return not self.reports_progress and work_seconds == 0


# The four operations of the original project, on exact decimals.

DECIMAL_BOUND = Decimal(10**12)  # not Decimal("1e12"), which messages would show as 1E+12
DECIMAL_PLACES = 6
ARITHMETIC_INPUTS = (
    Input("x", gettext_noop("x"), "decimal", -DECIMAL_BOUND, DECIMAL_BOUND),
    Input("y", gettext_noop("y"), "decimal", -DECIMAL_BOUND, DECIMAL_BOUND),
)


def decimal_text(value: Decimal) -> str:
    # Fixed-point, without trailing zeros or an exponent: 1E+2 reads 100, 2.50 reads 2.5.
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _exact(function: Callable[[Decimal, Decimal], Decimal]) -> Callable[[Inputs, ProgressCallback], str]:
    def compute(inputs: Inputs, report_progress: ProgressCallback) -> str:
        # 40 digits hold every sum and product of two bounded inputs exactly; a quotient is rounded to 40.
        with localcontext(prec=40):
            return decimal_text(function(Decimal(inputs["x"]), Decimal(inputs["y"])))

    return compute


def _combine(function: Callable[[list[Decimal]], Decimal]) -> Callable[[Inputs, ProgressCallback], str]:
    def compute(inputs: Inputs, report_progress: ProgressCallback) -> str:
        # As exact as the arithmetic: a hundred bounded values sum within 40 digits.
        with localcontext(prec=40):
            return decimal_text(function([Decimal(value) for value in inputs["values"]]))

    return compute


# A fan-in's input: the results of several computations (a workflow's steps), or values given.
COMBINED_INPUTS = (
    Input(
        "values", gettext_noop("Values"), "decimal", -DECIMAL_BOUND * MAX_VALUES, DECIMAL_BOUND * MAX_VALUES, many=True
    ),
)


def _refuse_zero_divisor(inputs: Inputs) -> None:
    if inputs["y"] == 0:
        raise OperationError(gettext_noop("Division by zero is not possible."), field="y")


# Longer computations that report their progress.


def count_primes(inputs: Inputs, report_progress: ProgressCallback) -> str:
    """The number of primes below n, by a segmented sieve of Eratosthenes."""
    n = int(inputs["n"])
    if n <= 2:
        return "0"
    root = math.isqrt(n - 1)
    small = bytearray([1]) * (root + 1)
    small[0:2] = b"\x00\x00"
    for p in range(2, math.isqrt(root) + 1):
        if small[p]:
            small[p * p :: p] = bytes(len(range(p * p, root + 1, p)))
    base_primes = [p for p in range(2, root + 1) if small[p]]
    segment_size = 1 << 18
    count = 0
    for low in range(0, n, segment_size):
        high = min(low + segment_size, n)
        segment = bytearray([1]) * (high - low)
        for p in base_primes:
            if p * p >= high:
                break
            start = max(p * p, (low + p - 1) // p * p)
            segment[start - low :: p] = bytes(len(range(start - low, high - low, p)))
        if low == 0:
            segment[0 : min(2, high)] = bytes(min(2, high))
        count += segment.count(1)
        report_progress(high, n)
    return str(count)


def estimate_pi(inputs: Inputs, report_progress: ProgressCallback) -> str:
    """Pi from random points in the unit square; the seed makes a run repeatable."""
    samples, rng = int(inputs["samples"]), random.Random(int(inputs["seed"]))  # noqa: S311 (sampling, not secrets)
    chunk, inside, done = 100_000, 0, 0
    while done < samples:
        size = min(chunk, samples - done)
        draw = rng.random
        inside += sum(1 for _ in range(size) if draw() ** 2 + draw() ** 2 <= 1.0)
        done += size
        report_progress(done, samples)
    return f"{4 * inside / samples:.6f}"


def factorize(inputs: Inputs, report_progress: ProgressCallback) -> str:
    """The prime factors of n by trial division, written as 2^3 × 3 × 7."""
    n = remaining = int(inputs["n"])
    factors: dict[int, int] = {}
    for p in (2, 3, 5):
        while remaining % p == 0:
            factors[p] = factors.get(p, 0) + 1
            remaining //= p
    # Candidates 7, 11, 13, ... on a 2·3·5 wheel: 8 of every 30 numbers.
    gaps = (4, 2, 4, 2, 4, 6, 2, 6)
    candidate, step, checks, limit = 7, 0, 0, math.isqrt(remaining)
    while candidate <= limit:
        if remaining % candidate == 0:
            while remaining % candidate == 0:
                factors[candidate] = factors.get(candidate, 0) + 1
                remaining //= candidate
            limit = math.isqrt(remaining)
        candidate += gaps[step]
        step = (step + 1) % 8
        checks += 1
        if checks % 200_000 == 0:
            report_progress(min(candidate, limit), max(limit, 1))
    if remaining > 1:
        factors[remaining] = factors.get(remaining, 0) + 1
    report_progress(1, 1)
    if n == 1:
        return "1"
    return " × ".join(f"{p}^{k}" if k > 1 else str(p) for p, k in sorted(factors.items()))


MAX_RANGE_VALUES = 1000


def expand_range(spec: Input, start: Number, stop: Number, step: Number) -> list[Number]:
    """The values start, start + step, ... up to stop included, for one input of a batch: at most
    MAX_RANGE_VALUES of them, each within the input's bounds and of its kind (whole numbers stay whole)."""
    if spec.kind == "integer" and any(Decimal(str(v)) % 1 for v in (start, stop, step)):
        raise OperationError(gettext_noop("%(input)s takes whole numbers only."), {"input": spec.name}, "step")
    kind = int if spec.kind == "integer" else Decimal
    start, stop, step = (kind(Decimal(str(value))) for value in (start, stop, step))
    if step <= 0:
        raise OperationError(gettext_noop("The step must be greater than zero."), field="step")
    if stop < start:
        raise OperationError(gettext_noop("The range must end at or after its start."), field="stop")
    count = int((stop - start) / step) + 1
    if count > MAX_RANGE_VALUES:
        raise OperationError(
            gettext_noop("This range has %(count)s values; a batch takes at most %(limit)s."),
            {"count": count, "limit": MAX_RANGE_VALUES},
            "step",
        )
    if start < spec.minimum or start + (count - 1) * step > spec.maximum:
        raise OperationError(
            gettext_noop("The values of %(input)s must lie between %(minimum)s and %(maximum)s."),
            {"input": spec.name, "minimum": spec.minimum, "maximum": spec.maximum},
            "stop",
        )
    return [start + index * step for index in range(count)]


def simulate_work(seconds: int, report_progress: ProgressCallback, *, step: float = 0.2) -> None:
    """Sleeps in short steps, reporting each, as the original project slept to make the live refresh visible."""
    total_ms = seconds * 1000
    start = time.monotonic()
    while (elapsed_ms := int((time.monotonic() - start) * 1000)) < total_ms:
        report_progress(elapsed_ms, total_ms)
        time.sleep(min(step, (total_ms - elapsed_ms) / 1000))
    report_progress(total_ms, total_ms)


REGISTRY: dict[str, Operation] = {
    op.name: op
    for op in (
        Operation("add", gettext_noop("Add"), ARITHMETIC_INPUTS, _exact(lambda x, y: x + y)),
        Operation("subtract", gettext_noop("Subtract"), ARITHMETIC_INPUTS, _exact(lambda x, y: x - y)),
        Operation("multiply", gettext_noop("Multiply"), ARITHMETIC_INPUTS, _exact(lambda x, y: x * y)),
        Operation(
            "divide",
            gettext_noop("Divide"),
            ARITHMETIC_INPUTS,
            _exact(lambda x, y: x / y),
            check=_refuse_zero_divisor,
        ),
        Operation(
            "count_primes",
            gettext_noop("Count primes below n"),
            (Input("n", gettext_noop("n"), "integer", 2, 1_000_000_000, 500_000_000),),
            count_primes,
            time_limit=60,
            reports_progress=True,
            result="integer",
        ),
        Operation(
            "estimate_pi",
            gettext_noop("Estimate pi by random sampling"),
            (
                Input("samples", gettext_noop("Samples"), "integer", 1, 50_000_000, 10_000_000),
                Input("seed", gettext_noop("Random seed"), "integer", 0, 2**32 - 1, 1),
            ),
            estimate_pi,
            time_limit=60,
            reports_progress=True,
        ),
        Operation(
            "factorize",
            gettext_noop("Factorize n into primes"),
            (Input("n", gettext_noop("n"), "integer", 1, 10**17, 10_000_000_000_000_061),),
            factorize,
            time_limit=60,
            reports_progress=True,
            result="text",
        ),
        Operation("sum", gettext_noop("Sum of values"), COMBINED_INPUTS, _combine(sum)),
        Operation("minimum", gettext_noop("Minimum of values"), COMBINED_INPUTS, _combine(min)),
        Operation("maximum", gettext_noop("Maximum of values"), COMBINED_INPUTS, _combine(max)),
    )
}


def run(operation: Operation, inputs: Inputs, *, work_seconds: int, report_progress: ProgressCallback) -> str:
    """Runs the simulated work, then the computation, reporting one progress that goes once from 0 to total.

    Each phase gets an equal share of the bar. Raises TimeLimitExceeded at the first report past the run's
    time limit (the operation's own plus the simulated work). The time `report_progress` takes is not the
    computation's: a report that waits out a database outage moves the deadline by as much.
    """
    phases = [p for p, present in (("work", work_seconds > 0), ("compute", operation.reports_progress)) if present]
    time_limit = operation.limit_for(work_seconds)
    deadline = time.monotonic() + time_limit
    current = 0
    scale = 1000

    def report(done: int, total: int) -> None:
        nonlocal deadline
        if (reported := time.monotonic()) > deadline:
            raise TimeLimitExceeded(time_limit)
        fraction = min(done / total, 1.0) if total else 1.0
        report_progress(int((current + fraction) * scale), len(phases) * scale)
        deadline += time.monotonic() - reported

    if work_seconds:
        simulate_work(work_seconds, report)
        current += 1
    result = operation.function(inputs, report)
    if time.monotonic() > deadline:
        raise TimeLimitExceeded(time_limit)
    return result
