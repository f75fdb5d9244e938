"""The workflow builder's form: steps, each an operation whose inputs are values or the results of other steps,
posted as flat fields (step-2-x-source, step-2-x-value, ...) so that it works without script. It turns them into the
steps of tasks.workflows.plan, which checks the whole as it does for the API: the form reads fields, the plan judges
the workflow."""

import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from django import forms
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import QueryDict
from django.utils.translation import gettext, gettext_lazy
from django.utils.translation import gettext_lazy as _

from dashboard.computations.forms import DEFAULT_OPERATION, operation_choices
from dashboard.workflows.drawing import Drawing, Edge, Node, draw
from tasks import services
from tasks.models import Status, Workflow, translate_error
from tasks.operations import MAX_VALUES, REGISTRY, Input, Operation
from tasks.workflows import recording
from tasks.workflows.plan import MAX_STEPS, Plan, PlanError, StepProblem, plan

VALUE = "value"  # an input's source when it is given, not another step's result
STEP_FIELD = re.compile(r"^step-(\d+)-(.+)$")
REMOVE = re.compile(r"^remove-(\d+)$")
VALUE_SEPARATORS = re.compile(r"[\s,;]+")


def step_count(data: Mapping[str, str]) -> int:
    """The steps the posted form has. More than MAX_STEPS + 1 are not read: the plan refuses past MAX_STEPS, and a
    post of thousands would only cost the server (the page never offers a step past MAX_STEPS)."""
    try:
        count = int(data.get("steps", ""))
    except ValueError:
        count = 1
    return min(max(count, 0), MAX_STEPS + 1)


def edited(data: QueryDict) -> tuple[QueryDict, int | None]:
    """The posted builder with its button's `do` applied, and the step whose operation takes the focus: "add" appends
    a step, "remove-N" takes step N out and renumbers those after it (an input that took its result takes a value
    again; what waited for it no longer does)."""
    do, count = data.get("do", ""), step_count(data)
    if do == "add" and count < MAX_STEPS:
        changed = data.copy()
        changed["steps"] = str(count + 1)
        changed[f"step-{count + 1}-operation"] = DEFAULT_OPERATION
        changed[f"step-{count + 1}-work_seconds"] = "0"
        return changed, count + 1
    found = REMOVE.match(do)
    if found is None or not 1 <= (removed := int(found[1])) <= count:
        return data, None
    changed = QueryDict(mutable=True)
    for key, values in data.lists():
        step = STEP_FIELD.match(key)
        if step is None:
            changed.setlist(key, values)
            continue
        number, rest = int(step[1]), step[2]
        if number == removed or number > count:
            continue
        if rest.endswith("-source"):
            values = [_renumbered(value, removed) or VALUE for value in values]
        elif rest.endswith("-steps") or rest == "after":
            values = [renumbered for value in values if (renumbered := _renumbered(value, removed))]
        changed.setlist(f"step-{number - 1 if number > removed else number}-{rest}", values)
    changed["steps"] = str(count - 1)
    return changed, min(removed, count - 1) or None


def _renumbered(value: str, removed: int) -> str | None:
    """A step's number once step `removed` is gone (None: it was that step); anything else as it is."""
    if not value.isdigit():
        return value
    number = int(value)
    if number == removed:
        return None
    return str(number - 1) if number > removed else value


def problem_text(problem: StepProblem, operation: Operation | None) -> str:
    """A plan's problem in the reader's language: the input by its label, an operation by its name."""
    params = dict(problem.error.params)
    if "operation" in params:
        params["operation"] = gettext(str(params["operation"]))
    return translate_error(problem.error.message, params, operation.inputs if operation else ())


@dataclass(frozen=True)
class InputFields:
    """One input of a step as the builder shows it: where its value comes from and the value, or, for an input that
    takes several, the steps whose results it takes and values besides."""

    spec: Input
    label: str
    source: forms.BoundField | None  # one value's: VALUE or a step's number
    value: forms.BoundField | None
    steps: forms.BoundField | None  # several values': the steps whose results it takes
    extra: forms.BoundField | None
    offered: list[tuple[str, str]]  # the steps shown as sources: those with a number for a result, and any chosen
    errors: list[str]


class StepForm(forms.Form):
    """One step, its fields named step-N-...: the operation, each input, the steps it waits for, its simulated work.
    The values are read by the plan (bounds, whole numbers, missing ones), which says what is wrong where."""

    operation = forms.ChoiceField(label=_("Operation"), choices=operation_choices)
    after = forms.TypedMultipleChoiceField(
        label=_("Waits for"), coerce=int, required=False, widget=forms.CheckboxSelectMultiple
    )
    work_seconds = forms.IntegerField(label=_("Simulated work (seconds)"), required=False, initial=0)

    def __init__(
        self, data: QueryDict | None, *, number: int, operations: Mapping[int, Operation | None], quiet: bool = False
    ):
        super().__init__(data, prefix=f"step-{number}")
        self.number, self.quiet = number, quiet
        self.spec = operations[number]
        self.operations = operations
        self.fields["operation"].initial = self.spec.name if self.spec else DEFAULT_OPERATION
        others = [other for other in operations if other != number]
        self.fields["after"].choices = [(other, step_label(other)) for other in others]
        # Any other step is accepted here, and the plan says why one cannot be taken (its result is text).
        results = [(str(other), result_label(other)) for other in others]
        for spec in self.spec.inputs if self.spec else ():
            if spec.many:
                self.fields[f"{spec.name}-steps"] = forms.TypedMultipleChoiceField(
                    coerce=int, choices=results, required=False, widget=forms.CheckboxSelectMultiple
                )
                self.fields[f"{spec.name}-extra"] = forms.CharField(required=False, max_length=MAX_VALUES * 24)
            else:
                # Not posted yet when the operation was just picked: a value, then.
                self.fields[f"{spec.name}-source"] = forms.ChoiceField(
                    choices=[(VALUE, gettext_lazy("Value")), *results], initial=VALUE, required=False
                )
                self.fields[f"{spec.name}-value"] = forms.CharField(required=False, max_length=60)
        # The plan's problems by what they name: an input, "operation", "after", "work_seconds", or None (the step).
        self.problems: dict[str | None, list[str]] = {}

    @property
    def label(self) -> str:
        return gettext(self.spec.label) if self.spec else "?"

    def planned(self) -> dict[str, object]:
        """The valid step as tasks.workflows.plan reads it."""
        data, inputs = self.cleaned_data, {}
        for spec in self.spec.inputs:
            if spec.many:
                extra = [value for value in VALUE_SEPARATORS.split(data[f"{spec.name}-extra"]) if value]
                inputs[spec.name] = [{"step": step} for step in sorted(data[f"{spec.name}-steps"])] + extra or None
            elif (source := data[f"{spec.name}-source"] or VALUE) == VALUE:
                inputs[spec.name] = data[f"{spec.name}-value"].strip() or None
            else:
                inputs[spec.name] = {"step": int(source)}
        return {
            "operation": self.spec.name,
            "inputs": inputs,
            "after": sorted(data["after"]),
            "work_seconds": data["work_seconds"] or 0,
        }

    def references(self) -> Iterator[tuple[int, bool]]:
        """The steps this one names as posted, valid or not, and whether it only waits for each: what the graph
        draws before the whole is valid."""
        for spec in self.spec.inputs if self.spec else ():
            if spec.many:
                named = self._posted(f"{spec.name}-steps")
            else:
                named = [self.data.get(self.add_prefix(f"{spec.name}-source"), "")]
            yield from ((int(value), False) for value in named if value.isdigit())
        yield from ((int(value), True) for value in self._posted("after") if value.isdigit())

    def _posted(self, name: str) -> list[str]:
        return self.data.getlist(self.add_prefix(name)) if self.is_bound else []

    @property
    def inputs(self) -> list[InputFields]:
        return [self._input(spec) for spec in (self.spec.inputs if self.spec else ())]

    def _input(self, spec: Input) -> InputFields:
        names = {part: f"{spec.name}-{part}" for part in ("source", "value", "steps", "extra")}
        bound = {part: self[name] if name in self.fields else None for part, name in names.items()}
        picker = bound["steps"] if spec.many else bound["source"]
        chosen = (picker.value() or []) if spec.many else [picker.value()]
        offered = [
            (value, label)
            for value, label in picker.field.choices
            if value != VALUE and (self._gives_number(int(value)) or value in chosen)
        ]
        errors = [] if self.quiet else [error for field in bound.values() if field for error in field.errors]
        errors += self.problems.get(spec.name, [])
        return InputFields(spec, gettext(spec.label), **bound, offered=offered, errors=errors)

    def _gives_number(self, number: int) -> bool:
        operation = self.operations.get(number)
        return operation is None or operation.result != "text"

    def errors_of(self, name: str | None) -> list[str]:
        """The messages about the operation, "after" or "work_seconds", or (None) the step as a whole: its own and
        any of the plan's that name no field shown."""
        if self.quiet:
            return []
        if name is not None:
            return [*self[name].errors, *self.problems.get(name, [])]
        shown = {"operation", "after", "work_seconds", *(spec.name for spec in (self.spec.inputs if self.spec else ()))}
        return [
            *self.non_field_errors(),
            *(message for key, messages in self.problems.items() if key not in shown for message in messages),
        ]

    def summary(self) -> str:
        """Its inputs on one line, for its box in the graph: "x = 2; y = #1"."""
        parts = []
        for row in self.inputs:
            if row.spec.many:
                given = [f"#{step}" for step in row.steps.value() or ()]
                given += [value for value in VALUE_SEPARATORS.split(row.extra.value() or "") if value]
            elif (source := row.source.value()) and source != VALUE:
                given = [f"#{source}"]
            else:
                given = [(row.value.value() or "").strip() or "?"]
            parts.append(f"{row.label} = {', '.join(given) or '?'}")
        return "; ".join(parts)


class WorkflowForm(forms.Form):
    """A workflow being built: its name, its steps (`steps` says how many) and the key that makes a second post of it
    harmless. Valid when every step's fields read and tasks.workflows.plan accepts the whole."""

    name = forms.CharField(label=_("Name"), max_length=100, required=False)
    steps = forms.IntegerField(min_value=0, widget=forms.HiddenInput)
    # New with every fresh form: posting the same form twice (a double click, a browser retry) submits once.
    idempotency_key = forms.UUIDField(required=False, widget=forms.HiddenInput)

    def __init__(
        self, data: QueryDict | None = None, *, actor: services.Actor | None = None, quiet: bool = False
    ) -> None:
        """`quiet`: the form shows no messages (a step just added or removed: nothing in it was filled yet)."""
        super().__init__(data, initial={"idempotency_key": uuid.uuid4(), "steps": 1})
        self.actor, self.quiet = actor, quiet
        count = step_count(data) if data is not None else 1
        operations = {
            number: REGISTRY.get(data.get(f"step-{number}-operation") or "" if data is not None else DEFAULT_OPERATION)
            for number in range(1, count + 1)
        }
        self.step_forms = [StepForm(data, number=n, operations=operations, quiet=quiet) for n in operations]
        self.planned: Plan | None = None

    def clean(self) -> dict:
        cleaned = super().clean()
        readable = [step.is_valid() for step in self.step_forms]  # each step's own messages, all of them
        if self.errors or not all(readable):
            return cleaned
        try:
            self.planned = plan([step.planned() for step in self.step_forms], name=cleaned.get("name") or "")
        except PlanError as error:
            for problem in error.problems:
                if problem.step is None:
                    self.add_error(None, problem_text(problem, None))
                    continue
                step = self.step_forms[problem.step - 1]
                step.problems.setdefault(problem.input, []).append(problem_text(problem, step.spec))
        return cleaned

    def is_valid(self) -> bool:
        return super().is_valid() and self.planned is not None

    @property
    def count(self) -> int:
        return len(self.step_forms)

    @property
    def full(self) -> bool:
        return self.count >= MAX_STEPS

    @property
    def size(self) -> int:
        """Computations the valid form queues: its steps."""
        return len(self.planned.steps) if self.planned else self.count

    def submit(self, owner: AbstractBaseUser | None, address: str | None) -> Workflow:
        """The valid form's workflow, its steps and edges recorded and its first steps sent."""
        return recording.submit(
            self.planned,
            idempotency_key=self.cleaned_data["idempotency_key"],
            owner=owner,
            address=address,
            actor=self.actor,
        )

    def drawing(self) -> Drawing:
        """The graph of what is built so far: every step waiting, and each link it names to another step, except any
        that would close a loop (the plan reports the loop beside the form)."""
        waiting = str(Status.WAITING.label)
        nodes = [
            Node(step.number, step.label, Status.WAITING, waiting, step.summary(), f"#step-{step.number}")
            for step in self.step_forms
        ]
        names = {step.number for step in self.step_forms}
        # One arrow between two steps, drawn as taking if one of the links takes a result (as the workflow's page).
        waits_only: dict[tuple[int, int], bool] = {}
        for step in self.step_forms:
            for source, waits in step.references():
                if source in names and source != step.number:
                    link = (source, step.number)
                    waits_only[link] = waits_only.get(link, True) and waits
        edges, successors = [], {number: set() for number in names}
        for (source, target), waits in waits_only.items():
            if not _reaches(successors, target, source):
                successors[source].add(target)
                edges.append(Edge(source, target, waits))
        return draw(nodes, edges)


def _reaches(successors: Mapping[int, set[int]], start: int, goal: int) -> bool:
    seen, stack = set(), [start]
    while stack:
        number = stack.pop()
        if number == goal:
            return True
        if number not in seen:
            seen.add(number)
            stack.extend(successors[number])
    return False


def step_label(number: int) -> str:
    return gettext("Step %(number)s") % {"number": number}


def result_label(number: int) -> str:
    return gettext("Result of step %(number)s") % {"number": number}
