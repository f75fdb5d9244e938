"""The shapes of /api/v1/'s bodies, from which the OpenAPI document is generated. What comes in forbids unknown
members (a typo is an error, not a silent default); what goes out is what the pages show, in machine form."""

import enum
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal, Union

from ninja import Field, Schema
from pydantic import ConfigDict, StrictInt, StringConstraints, create_model

from tasks.models import Status
from tasks.operations import DECIMAL_PLACES, MAX_VALUES, REGISTRY, Input
from tasks.workflows.plan import MAX_STEPS

# The registry's operations, as the document's enumeration.
OperationName = enum.StrEnum("OperationName", {name.upper(): name for name in REGISTRY})
StatusName = enum.StrEnum("StatusName", {value.upper(): value for value in Status.values})
# An input's value: a JSON number, or a decimal number as a string (exact, however many places).
Value = Decimal
Id = Annotated[int, Field(ge=1, le=2**63 - 1)]
# In a JSON body, a whole number is a JSON integer: not true, false, "5" or 5.5 (a query string's are text).
Whole = StrictInt
BodyId = Annotated[StrictInt, Field(ge=1, le=2**63 - 1)]
Search = Annotated[str, StringConstraints(max_length=100)]


class In(Schema):
    model_config = ConfigDict(extra="forbid")


class Work(In):
    work_seconds: Whole = Field(0, ge=0, le=60, description="Simulated work before computing, to watch progress.")


def _value(spec: Input) -> object:
    """An input as the document describes it: its kind and its bounds, as the page's form checks them."""
    if spec.kind == "integer":
        one = Annotated[Whole, Field(ge=spec.minimum, le=spec.maximum)]
    else:
        one = Annotated[Decimal, Field(ge=spec.minimum, le=spec.maximum, decimal_places=DECIMAL_PLACES)]
    return Annotated[list[one], Field(min_length=1, max_length=MAX_VALUES)] if spec.many else one


def per_operation(base: type[Schema], suffix: str) -> object:
    """`base` with an operation and its own inputs, for each operation of the registry: one of them, told apart by
    `operation` (a discriminated union, which the document states as oneOf with a discriminator)."""
    models = []
    for operation in REGISTRY.values():
        camel = "".join(part.title() for part in operation.name.split("_"))
        fields = {spec.name: (_value(spec), ...) for spec in operation.inputs}
        inputs = create_model(f"{camel}Inputs", __config__=ConfigDict(extra="forbid"), **fields)
        models.append(
            create_model(
                f"{camel}{suffix}", __base__=base, operation=(Literal[operation.name], ...), inputs=(inputs, ...)
            )
        )
    return Annotated[Union[tuple(models)], Field(discriminator="operation")]  # noqa: UP007 (a runtime tuple)


ComputationIn = per_operation(Work, "Submission")


class BatchIn(In):
    operation: OperationName
    vary: Annotated[str, StringConstraints(max_length=64)] = Field(description="The input that takes each value.")
    start: Value
    stop: Value = Field(description="The last value, included.")
    step: Value
    inputs: dict[Annotated[str, StringConstraints(max_length=64)], Value] = Field(
        default_factory=dict, description="The other inputs, fixed."
    )
    work_seconds: Whole = Field(0, ge=0, le=60)


class Filter(In):
    status: StatusName | None = None
    operation: OperationName | None = None
    q: Search = Field("", description="The list's search: #42, a task id, an operation, or an exact value.")


class BulkIn(In):
    """These ids, or all that match a filter (at most 10,000 at once)."""

    ids: list[BodyId] | None = Field(None, max_length=10_000)
    filter: Filter | None = None


class BulkOut(Schema):
    requested: int = Field(description="Selected computations the action applies to, up to the cap.")
    changed: int = Field(description="Those it changed (the others changed state meanwhile).")
    capped: bool = Field(description="More matched than the cap.")


class Step(Schema):
    at: datetime
    kind: str
    title: str
    detail: str


# A stored input: a value, a fan-in's values, or (a workflow's step waiting for a result) null.
StoredInput = str | int | None | list[str | int | None]


class ComputationOut(Schema):
    id: int
    operation: str
    inputs: dict[str, StoredInput]
    work_seconds: int
    status: StatusName
    progress: int
    result: str | None
    error: str | None
    attempts: int
    worker: str | None
    batch: int | None
    workflow: int | None
    step: int | None = Field(description="Its number in its workflow.")
    task_id: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    url: str = Field(description="Its page.")


class ComputationDetail(ComputationOut):
    timeline: list[Step]


class ComputationList(Schema):
    items: list[ComputationOut]
    next: str | None = Field(description="The next (older) page, or null on the last.")


class BatchOut(Schema):
    id: int
    operation: str
    vary: str
    start: str
    stop: str
    step: str
    inputs: dict[str, str | int]
    work_seconds: int
    size: int
    counts: dict[str, int] = Field(description="Its computations by status.")
    created_at: datetime
    url: str
    computations: str = Field(description="Its computations, through the list.")


class ResultOf(In):
    step: Annotated[StrictInt, Field(ge=1, le=MAX_STEPS)] = Field(description="The step whose result this input takes.")


# A step's input: a value, the result of another step, or (an input that takes several: sum, minimum, maximum) a
# list of them. The workflow is checked whole (tasks.workflows.plan): bounds, kinds, steps named, no loop.
Given = ResultOf | Value


class WorkflowStepIn(In):
    operation: OperationName
    inputs: dict[
        Annotated[str, StringConstraints(max_length=64)], Given | Annotated[list[Given], Field(max_length=MAX_VALUES)]
    ]
    after: list[Annotated[StrictInt, Field(ge=1, le=MAX_STEPS)]] = Field(
        default_factory=list, max_length=MAX_STEPS, description="Steps it waits for without taking their results."
    )
    work_seconds: Whole = Field(0, ge=0, le=60)


class WorkflowIn(In):
    """Steps numbered from 1 in the order given; an input takes another step's result as {"step": n}."""

    name: Annotated[str, StringConstraints(max_length=100)] = ""
    steps: list[WorkflowStepIn] = Field(min_length=1, max_length=MAX_STEPS)


class EdgeOut(Schema):
    source: int
    target: int
    input: str | None = Field(description="The input of `target` that takes `source`'s result; null: it only waits.")


class WorkflowSummary(Schema):
    id: int
    name: str
    size: int
    counts: dict[StatusName, int] = Field(description="Its steps by status.")
    created_at: datetime
    ended_at: datetime | None
    url: str = Field(description="Its page, where its graph is drawn.")


class WorkflowOut(WorkflowSummary):
    steps: list[ComputationOut]
    edges: list[EdgeOut]


class WorkflowList(Schema):
    items: list[WorkflowSummary]
    next: str | None = Field(description="The next (older) page, or null on the last.")
