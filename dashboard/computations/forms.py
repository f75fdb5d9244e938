"""Forms built from the operation registry: what a person may submit, and which list they see."""

import re
import uuid
from collections.abc import Mapping
from decimal import Decimal

from django import forms
from django.contrib.auth.base_user import AbstractBaseUser
from django.utils.translation import gettext, gettext_lazy, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from dashboard.computations.activity import RANGES
from tasks import services
from tasks.models import Batch, Computation, ComputationQuerySet, Status, Workflow, translate_error
from tasks.operations import (
    DECIMAL_PLACES,
    MAX_RANGE_VALUES,
    MAX_VALUES,
    REGISTRY,
    Input,
    Number,
    Operation,
    OperationError,
    decimal_text,
    expand_range,
)
from tasks.services import BULK_CAP, Selection
from tasks.workflows import recording
from tasks.workflows.plan import MAX_STEPS, Plan, PlanError, plan

DEFAULT_OPERATION = "add"
MAX_WORK_SECONDS = 60


def operation_choices() -> list[tuple[str, str]]:
    return [(op.name, gettext_lazy(op.label)) for op in REGISTRY.values()]


def ranged_operation_choices() -> list[tuple[str, str]]:
    """The operations a batch may run: those with an input that takes one value (not a fan-in's several)."""
    return [(op.name, gettext_lazy(op.label)) for op in REGISTRY.values() if any(not s.many for s in op.inputs)]


def combining_choices() -> list[tuple[str, str]]:
    """What a range's results may be combined by: no, or an operation that takes several values (sum, minimum...)."""
    fan_ins = [op for op in REGISTRY.values() if len(op.inputs) == 1 and op.inputs[0].many]
    return [("", pgettext_lazy("combine", "No")), *((op.name, gettext_lazy(op.label)) for op in fan_ins)]


def error_text(error: OperationError, inputs: tuple[Input, ...] = ()) -> str:
    return translate_error(error.message, error.params, inputs)


class ValuesField(forms.CharField):
    """An input that takes several numbers (a fan-in's), written "1, 2.5, 3" (commas, spaces or semicolons apart)."""

    def __init__(self, spec: Input, **options: object):
        self.spec = spec
        super().__init__(**options)

    def to_python(self, value: object) -> list[Decimal] | None:
        text = super().to_python(value)
        if not text:
            return None
        values = []
        for each in re.split(r"[\s,;]+", text.strip()):
            try:
                number = Decimal(each)
            except ArithmeticError:
                raise forms.ValidationError(gettext("“%(value)s” is not a number.") % {"value": each[:40]}) from None
            if not number.is_finite() or not self.spec.minimum <= number <= self.spec.maximum:
                raise forms.ValidationError(
                    gettext("Each value must lie between %(minimum)s and %(maximum)s.")
                    % {"minimum": self.spec.minimum, "maximum": self.spec.maximum}
                )
            values.append(number)
        if len(values) > MAX_VALUES:
            raise forms.ValidationError(gettext("At most %(limit)s values.") % {"limit": MAX_VALUES})
        return values

    def prepare_value(self, value: object) -> object:
        return ", ".join(str(each) for each in value) if isinstance(value, list) else value


def _input_field(spec: Input) -> forms.Field:
    common = {
        "label": gettext_lazy(spec.label),
        "initial": spec.default,
        "help_text": gettext_lazy(spec.help_text) if spec.help_text else "",
    }
    if spec.many:
        return ValuesField(spec, max_length=MAX_VALUES * 24, **common)
    if spec.kind == "decimal":
        return forms.DecimalField(
            min_value=spec.minimum,
            max_value=spec.maximum,
            max_digits=len(str(int(spec.maximum))) + DECIMAL_PLACES,
            decimal_places=DECIMAL_PLACES,
            widget=forms.NumberInput(attrs={"inputmode": "decimal"}),
            **common,
        )
    return forms.IntegerField(min_value=spec.minimum, max_value=spec.maximum, **common)


class ComputationForm(forms.Form):
    """The operation, its inputs (which depend on the operation chosen) and the simulated work."""

    operation = forms.ChoiceField(label=_("Operation"), choices=operation_choices)
    work_seconds = forms.IntegerField(
        label=_("Simulated work (seconds)"),
        min_value=0,
        max_value=MAX_WORK_SECONDS,
        initial=0,
        required=False,
        help_text=_("Waits this long before computing, so you can watch its progress."),
    )
    # New with every fresh form: posting the same form twice (a double click, a browser retry) submits once.
    idempotency_key = forms.UUIDField(required=False, widget=forms.HiddenInput)

    def __init__(
        self,
        data: Mapping[str, str] | None = None,
        *,
        operation: str | None = None,
        actor: services.Actor | None = None,
    ):
        super().__init__(data, initial={"idempotency_key": uuid.uuid4()})
        self.actor = actor  # the API's submissions are in the audit trail; the page's are their own rows
        name = data.get("operation") if data is not None else operation
        # An unknown name in submitted data is the operation field's error; in a link it falls back to the default.
        self.spec: Operation | None = REGISTRY.get(name or "") or (
            None if data is not None else REGISTRY[DEFAULT_OPERATION]
        )
        if self.spec is not None:
            self.fields["operation"].initial = self.spec.name
            for spec in self.spec.inputs:
                self.fields[spec.name] = _input_field(spec)
            self.order_fields(["operation", *(spec.name for spec in self.spec.inputs), "work_seconds"])

    def clean(self) -> dict:
        cleaned = super().clean()
        if self.spec is not None and not self.errors:
            try:
                self.spec.validate(self.inputs)
            except OperationError as error:
                self.add_error(error.field, error_text(error, self.spec.inputs))
        return cleaned

    @property
    def inputs(self) -> dict[str, Number]:
        assert self.spec is not None
        return {spec.name: self.cleaned_data[spec.name] for spec in self.spec.inputs}

    @property
    def work(self) -> int:
        return self.cleaned_data.get("work_seconds") or 0

    @property
    def input_fields(self) -> list[forms.BoundField]:
        return [self[spec.name] for spec in self.spec.inputs] if self.spec else []

    size = 1  # computations the valid form queues

    def submit(self, owner: AbstractBaseUser | None, address: str | None) -> Computation:
        """The valid form's computation, recorded and sent (services.submit), `owner`'s or from `address`."""
        return services.submit(
            operation=self.spec,
            inputs=self.inputs,
            work_seconds=self.work,
            idempotency_key=self.cleaned_data["idempotency_key"],
            owner=owner,
            address=address,
            actor=self.actor,
        )


class BatchForm(ComputationForm):
    """One operation over a range of one of its inputs: from, to (included) and step, at most MAX_RANGE_VALUES
    values; the other inputs are fixed. With `combine`, a workflow instead: a step per value, and a last one that
    combines their results (so at most MAX_STEPS - 1 values)."""

    varied = forms.ChoiceField(label=_("Input to vary"))
    start = forms.DecimalField(label=_("From"), max_digits=25, decimal_places=DECIMAL_PLACES, initial=1)
    stop = forms.DecimalField(label=_("To (included)"), max_digits=25, decimal_places=DECIMAL_PLACES, initial=10)
    step = forms.DecimalField(label=_("Step"), max_digits=25, decimal_places=DECIMAL_PLACES, initial=1)
    combine = forms.ChoiceField(label=_("Then combine the results"), choices=combining_choices, required=False)

    def __init__(
        self,
        data: Mapping[str, str] | None = None,
        *,
        operation: str | None = None,
        actor: services.Actor | None = None,
    ):
        super().__init__(data, operation=operation, actor=actor)
        self.workflow: Plan | None = None  # what a valid form that combines the results submits
        self.fields["operation"].choices = ranged_operation_choices
        self.fields["step"].help_text = gettext_lazy("At most %(limit)s values.") % {"limit": MAX_RANGE_VALUES}
        self.fields["combine"].help_text = gettext_lazy(
            "A workflow then: a step per value, and a last one that takes all their results (at most %(limit)s values)."
        ) % {"limit": MAX_STEPS - 1}
        if self.spec is not None:
            self.fields["varied"].choices = [
                (spec.name, gettext_lazy(spec.label)) for spec in self.spec.inputs if not spec.many
            ]
            for spec in self.spec.inputs:
                self.fields[spec.name].required = False  # all but the varied one, checked in clean()
            names = [spec.name for spec in self.spec.inputs]
            self.order_fields(["operation", "varied", "start", "stop", "step", *names, "work_seconds"])

    def clean(self) -> dict:
        cleaned = forms.Form.clean(self)
        if self.spec is None or self.errors:
            return cleaned
        varied = next(spec for spec in self.spec.inputs if spec.name == cleaned["varied"])
        for spec in self.spec.inputs:
            if spec != varied and cleaned.get(spec.name) is None:
                self.add_error(spec.name, forms.Field.default_error_messages["required"])
        if self.errors:
            return cleaned
        try:
            values = expand_range(varied, cleaned["start"], cleaned["stop"], cleaned["step"])
        except OperationError as error:
            self.add_error(error.field, error_text(error, self.spec.inputs))
            return cleaned
        self.size = len(values)
        for value in values:
            try:
                self.spec.validate({**self.fixed_inputs, varied.name: value})
            except OperationError as error:
                reason = error_text(error, self.spec.inputs)
                message = gettext("%(input)s = %(value)s: %(reason)s")
                self.add_error("start", message % {"input": gettext(varied.label), "value": value, "reason": reason})
                break
        if cleaned.get("combine") and not self.errors:
            self._combine(varied, values, REGISTRY[cleaned["combine"]])
        return cleaned

    def _combine(self, varied: Input, values: list[Number], combine: Operation) -> None:
        """The workflow of a computation per value and a last step that combines their results."""
        if self.spec.result == "text":
            message = gettext("%(operation)s gives text, which cannot be combined: choose “No”.")
            self.add_error("combine", message % {"operation": gettext(self.spec.label)})
            return
        if len(values) > MAX_STEPS - 1:
            message = gettext(
                "This range has %(count)s values; combined, a range takes at most %(limit)s (a workflow's steps, with "
                "the one that combines them)."
            )
            self.add_error("step", message % {"count": len(values), "limit": MAX_STEPS - 1})
            return
        steps = [
            {
                "operation": self.spec.name,
                "inputs": {**self.fixed_inputs, varied.name: value},
                "work_seconds": self.work,
            }
            for value in values
        ]
        steps.append({"operation": combine.name, "inputs": {"values": [{"step": n} for n in range(1, len(steps) + 1)]}})
        data = self.cleaned_data
        limits = {key: decimal_text(data[key]) for key in ("start", "stop", "step")}
        scope = gettext("%(name)s = %(start)s … %(stop)s, step %(step)s") % {"name": gettext(varied.label), **limits}
        name = gettext("%(combine)s: %(operation)s, %(range)s") % {
            "combine": gettext(combine.label),
            "operation": gettext(self.spec.label),
            "range": scope,
        }
        try:
            self.workflow = plan(steps, name=name)
        except PlanError as error:
            for problem in error.problems:
                self.add_error(None, error_text(problem.error, self.spec.inputs))
            return
        self.size = len(steps)

    @property
    def fixed_inputs(self) -> dict[str, Number]:
        varied = self.cleaned_data["varied"]
        return {spec.name: self.cleaned_data[spec.name] for spec in self.spec.inputs if spec.name != varied}

    def submit(self, owner: AbstractBaseUser | None, address: str | None) -> Batch | Workflow:
        """The valid form's batch and its computations, recorded and sent (services.submit_batch); or its workflow
        when it combines the results."""
        data = self.cleaned_data
        if self.workflow is not None:
            return recording.submit(
                self.workflow, idempotency_key=data["idempotency_key"], owner=owner, address=address, actor=self.actor
            )
        return services.submit_batch(
            operation=self.spec,
            varied=data["varied"],
            start=data["start"],
            stop=data["stop"],
            step=data["step"],
            fixed=self.fixed_inputs,
            work_seconds=self.work,
            idempotency_key=data["idempotency_key"],
            owner=owner,
            address=address,
            actor=self.actor,
        )


class ListFilterForm(forms.Form):
    """The list's filters, its search and its position: `before` an id (older rows) or `after` one (newer rows)."""

    status = forms.ChoiceField(
        label=_("Status"), choices=[("", pgettext_lazy("status", "All")), *Status.choices], required=False
    )
    operation = forms.ChoiceField(
        label=_("Operation"),
        choices=lambda: [("", pgettext_lazy("operation", "All")), *operation_choices()],
        required=False,
    )
    q = forms.CharField(
        label=_("Search"),
        max_length=100,
        required=False,
        help_text=_("A number (#42), a Celery task id, an operation, or an input's or result's exact value."),
        widget=forms.SearchInput,
    )
    before = forms.IntegerField(min_value=1, required=False, widget=forms.HiddenInput)
    after = forms.IntegerField(min_value=0, required=False, widget=forms.HiddenInput)
    # Not a filter: the range of the Activity panel above the list (dashboard.computations.activity.RANGES).
    activity = forms.ChoiceField(
        choices=[(key, span.label) for key, span in RANGES.items()], required=False, widget=forms.HiddenInput
    )

    def __init__(self, data: Mapping[str, str] | None = None):
        # Ids of its own: the page also holds the computation form, which has an `operation` field too.
        super().__init__(data, auto_id="filter_%s")

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("before") and cleaned.get("after") is not None:
            raise forms.ValidationError(gettext("Give either 'before' or 'after', not both."))
        return cleaned


class IdListField(forms.Field):
    """Computation ids from ticked checkboxes (or hidden inputs): positive whole numbers, at most BULK_CAP."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: object) -> list[int]:
        try:
            ids = sorted({int(item) for item in value or []})
        except (TypeError, ValueError) as error:
            raise forms.ValidationError(gettext("Computations are chosen by their ids, whole numbers.")) from error
        if any(pk <= 0 for pk in ids):
            raise forms.ValidationError(gettext("Computations are chosen by their ids, whole numbers."))
        if len(ids) > BULK_CAP:
            raise forms.ValidationError(gettext("At most %(cap)s computations at once.") % {"cap": BULK_CAP})
        return ids


class BulkActionForm(ListFilterForm):
    """Cancel or retry the ticked computations, or all that match the list's filters. The first post asks for
    confirmation (showing how many); the second, with `confirm`, acts."""

    DO_CHOICES = [
        ("cancel-selected", _("Cancel selected")),
        ("retry-selected", _("Retry selected")),
        ("cancel-matching", _("Cancel all matching")),
        ("retry-matching", _("Retry all matching")),
    ]

    do = forms.ChoiceField(choices=DO_CHOICES)
    ids = IdListField(required=False)
    confirm = forms.BooleanField(required=False)

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("do", "").endswith("-selected") and not cleaned.get("ids") and "ids" not in self.errors:
            raise forms.ValidationError(gettext("Tick at least one computation first."))
        return cleaned

    @property
    def action(self) -> str:
        return self.cleaned_data["do"].split("-")[0]

    @property
    def selection(self) -> Selection:
        if self.cleaned_data["do"].endswith("-selected"):
            return Selection(ids=self.cleaned_data["ids"])
        filters = {key: self.cleaned_data[key] for key in ("status", "operation") if self.cleaned_data.get(key)}
        return Selection(filters=filters, search=self.cleaned_data.get("q", ""))


class ExportFilterForm(ListFilterForm):
    """The list's filters, and a batch and a creation date range, for an export."""

    batch = forms.IntegerField(min_value=1, required=False)
    created_from = forms.DateTimeField(required=False)
    created_to = forms.DateTimeField(required=False)

    def queryset(self) -> ComputationQuerySet:
        rows = Computation.objects.all()
        for key in ("status", "operation", "batch"):
            if self.cleaned_data.get(key):
                rows = rows.filter(**{key: self.cleaned_data[key]})
        if self.cleaned_data.get("created_from"):
            rows = rows.filter(created_at__gte=self.cleaned_data["created_from"])
        if self.cleaned_data.get("created_to"):
            rows = rows.filter(created_at__lte=self.cleaned_data["created_to"])
        return rows
