"""The list's rows as the template shows them, worked out in Python once per render.

The template engine pays for every lookup, filter, include and translation inside a loop: at 25 rows they were
most of a render (about 1,300 lookups, 50 includes and 350 translations). Here each row's texts, labels and
addresses are plain attributes, and what is the same for every row (an operation's name, a status's label, the
buttons' words) is translated once.
"""

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import ClassVar

from django.contrib.humanize.templatetags.humanize import naturaltime
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.text import Truncator
from django.utils.translation import gettext, ngettext

from tasks.models import IN_FLIGHT, Batch, Computation, Status, StatusCounts, Workflow

# Cut in the list (a cell shows the beginning, with an ellipsis; its title, more); whole on a computation's page.
INPUTS_CHARACTERS, RESULT_CHARACTERS, ERROR_CHARACTERS, TITLE_CHARACTERS = 60, 40, 80, 300
VISIBLE_CHARACTERS = 24  # what the narrowest cell shows whole, without its title
_DIGITS = re.compile(r"(?<![\d.])\d{4,}(?:\.\d+)?")  # a whole number's digits, not a fraction's


@dataclass(frozen=True)
class Cut:
    """A text as a cell shows it, and, when that is cut short, more of it for the cell's title."""

    text: str
    whole: str = ""

    def __bool__(self) -> bool:
        return bool(self.text)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Moment:
    """A time as people read it ("3 minutes ago"), exactly in the reader's zone, and for machines (ISO 8601)."""

    iso: str
    exact: str
    relative: str

    def __str__(self) -> str:
        return self.relative


@dataclass(frozen=True)
class ComputationRow:
    is_batch: ClassVar[bool] = False
    is_workflow: ClassVar[bool] = False
    pk: int
    url: str
    label: str
    inputs: Cut
    status: str
    status_label: str
    progress: int | None  # while running
    progress_label: str
    result: Cut
    error: Cut
    created: Moment
    timing: str  # how long it ran, or has been waiting or running so far
    action: str  # where its Cancel or Retry button posts, if it has one
    action_label: str


@dataclass(frozen=True)
class BatchRow:
    is_batch: ClassVar[bool] = True
    is_workflow: ClassVar[bool] = False
    batch: Batch
    url: str
    label: str
    range_text: str
    counts: StatusCounts
    failed_text: str  # "3 failed", or nothing
    created: Moment


@dataclass(frozen=True)
class WorkflowRow:
    is_batch: ClassVar[bool] = False
    is_workflow: ClassVar[bool] = True
    workflow: Workflow
    url: str
    label: str  # "its name (4 steps)"
    counts: StatusCounts
    failed_text: str  # "1 failed · 2 not run", or nothing
    created: Moment


@dataclass(frozen=True)
class ValueRow:
    """A row of a batch's table of values: a computation without the times and actions the list shows."""

    pk: int
    url: str
    varied_value: str
    status: str
    status_label: str
    progress: int | None
    progress_label: str
    result: Cut
    error: Cut


def computation_row(computation: Computation) -> ComputationRow:
    """One computation as the list shows it: its page shows its status and its button the same way."""
    return _row(computation, Texts())


def list_title(running: int) -> str:
    """The list's heading in the tab's title: how many are running, if any."""
    if not running:
        return gettext("Computations")
    return ngettext("(%(n)s running) Computations", "(%(n)s running) Computations", running) % {"n": running}


def row_labels() -> dict[str, str]:
    """The list's column names, which each row repeats for a phone's cards: translated once per render."""
    return {
        "select": gettext("Select"),
        "operation": gettext("Operation"),
        "inputs": gettext("Inputs"),
        "status": gettext("Status"),
        "result": gettext("Result"),
        "time": gettext("Run time"),
        "created": gettext("Created"),
    }


type ListRow = ComputationRow | BatchRow | WorkflowRow


def shape(rows: Iterable[ListRow]) -> tuple:
    """What the rows show that does not move while their computations run (which rows, their statuses and
    buttons, a batch's or a workflow's counts): a running computation's progress and times move every second."""
    return tuple(_fixed(row) for row in rows)


def _fixed(row: ListRow) -> tuple:
    if row.is_batch:
        return ("batch", row.batch.pk, row.counts.ended, row.failed_text)
    if row.is_workflow:
        return ("workflow", row.workflow.pk, row.counts.ended, row.failed_text)
    return (row.pk, row.status, row.action)


def moving(rows: Iterable[ListRow]) -> list[ComputationRow]:
    """The rows whose progress or times move: the queued and running computations'."""
    return [row for row in rows if not (row.is_batch or row.is_workflow) and row.status in IN_FLIGHT]


def list_rows(computations: Iterable[Computation]) -> list[ListRow]:
    """The rows of a page of the list: a batch's (a workflow's) row where `_show_batches` (`_show_workflows`) gave
    it one (shown_batch, shown_workflow)."""
    texts = Texts()
    return [_list_row(row, texts) for row in computations]


def _list_row(computation: Computation, texts: "Texts") -> ListRow:
    if batch := getattr(computation, "shown_batch", None):
        return _batch_row(batch, computation.batch_counts, texts)
    if workflow := getattr(computation, "shown_workflow", None):
        return _workflow_row(workflow, computation.workflow_counts, texts)
    return _row(computation, texts)


def computation_rows(computations: Iterable[Computation]) -> list[ComputationRow]:
    """Computations as the list shows them, one by one (a workflow's steps on its page)."""
    texts = Texts()
    return [_row(computation, texts) for computation in computations]


def value_rows(computations: Iterable[Computation], varied: str) -> list[ValueRow]:
    """A batch's values: each computation's `varied` input, its status and its outcome."""
    texts = Texts()
    return [_value_row(computation, varied, texts) for computation in computations]


def _value_row(computation: Computation, varied: str, texts: "Texts") -> ValueRow:
    value = grouped(str(computation.inputs.get(varied)))
    return ValueRow(
        pk=computation.pk,
        url=texts.detail_url(computation.pk),
        varied_value=value,
        status=computation.status,
        status_label=texts.status(computation.status),
        **_outcome(computation),
    )


def _outcome(computation: Computation) -> dict:
    """What a row shows of how far a computation got: its progress while running, or its result or error."""
    error = computation.error_text if computation.error else ""
    running = computation.status == Status.RUNNING
    return {
        "progress": computation.progress if running else None,
        "progress_label": gettext("Progress of #%(id)s") % {"id": computation.pk} if running else "",
        "result": _cut("" if error else grouped(computation.result), RESULT_CHARACTERS),
        "error": _cut(error, ERROR_CHARACTERS),
    }


def grouped(text: str) -> str:
    """A text with the digits of its long numbers grouped as the reader's language does (1,234,567.5)."""
    if not text or len(text) < 4:
        return text
    return _DIGITS.sub(
        lambda number: formats.number_format(Decimal(number[0]), use_l10n=True, force_grouping=True), text
    )


def inputs_text(computation: Computation, texts: "Texts | None" = None) -> str:
    """The inputs as a person reads them, numbers grouped: "x = 1,500 · y = 2"."""
    pairs = texts.labelled_inputs(computation) if texts else computation.labelled_inputs
    return " · ".join(f"{label} = {_value_text(value)}" for label, value in pairs)


def _value_text(value: object) -> str:
    """An input's value: a number grouped, several (a fan-in's) listed, none yet (a workflow's step waiting for a
    result) a dash."""
    if value is None:
        return "—"
    if isinstance(value, list):
        return ", ".join(_value_text(each) for each in value)
    return grouped(str(value))


def duration(seconds: float) -> str:
    """A span of time, short: 4 ms, 1.5 s, 12 s, 3 min 20 s, 2 h 5 min."""
    if seconds < 1:
        return gettext("%(milliseconds)s ms") % {"milliseconds": round(seconds * 1000)}
    if seconds < 10:
        return gettext("%(seconds)s s") % {"seconds": formats.number_format(round(seconds, 1), 1, use_l10n=True)}
    minutes, whole_seconds = divmod(round(seconds), 60)
    if not minutes:
        return gettext("%(seconds)s s") % {"seconds": whole_seconds}
    hours, minutes = divmod(minutes, 60)
    if not hours:
        return gettext("%(minutes)s min %(seconds)s s") % {"minutes": minutes, "seconds": whole_seconds}
    return gettext("%(hours)s h %(minutes)s min") % {"hours": grouped(str(hours)), "minutes": minutes}


def _timing(computation: Computation, now: datetime) -> str:
    """What the list's time column says: the run time once it ended, how long it has waited or run so far."""
    if computation.status == Status.QUEUED:
        waited = now - (computation.enqueued_at or computation.created_at)
        return gettext("waiting %(time)s") % {"time": duration(max(waited.total_seconds(), 0))}
    if computation.status == Status.RUNNING and computation.started_at:
        running = now - computation.started_at
        return gettext("running %(time)s") % {"time": duration(max(running.total_seconds(), 0))}
    if computation.run_time is not None:
        return duration(computation.run_time.total_seconds())
    return ""


def _cut(text: str, characters: int) -> Cut:
    """`text` cut to `characters`; past what a cell shows whole, all of it (within reason) for its title."""
    # Most texts are short: Truncator's normalising and measuring is then a third of a row's cost, for nothing.
    if len(text) <= VISIBLE_CHARACTERS:
        return Cut(text)
    whole = text if len(text) <= TITLE_CHARACTERS else Truncator(text).chars(TITLE_CHARACTERS)
    return Cut(text if len(text) <= characters else Truncator(text).chars(characters), whole)


def _row(computation: Computation, texts: "Texts") -> ComputationRow:
    action, action_label = texts.action(computation)
    return ComputationRow(
        pk=computation.pk,
        url=texts.detail_url(computation.pk),
        label=texts.operation(computation),
        inputs=_cut(inputs_text(computation, texts), INPUTS_CHARACTERS),
        status=computation.status,
        status_label=texts.status(computation.status),
        **_outcome(computation),
        created=texts.moment(computation.created_at),
        timing=_timing(computation, texts.now),
        action=action,
        action_label=action_label,
    )


def _batch_row(batch: Batch, counts: StatusCounts, texts: "Texts") -> BatchRow:
    failed = counts[Status.FAILED]
    return BatchRow(
        batch=batch,
        url=batch.get_absolute_url(),
        label=texts.operation(batch),
        range_text=grouped(batch.range_text),
        counts=counts,
        failed_text=ngettext("%(n)s failed", "%(n)s failed", failed) % {"n": failed} if failed else "",
        created=texts.moment(batch.created_at),
    )


def _workflow_row(workflow: Workflow, counts: StatusCounts, texts: "Texts") -> WorkflowRow:
    size = ngettext("%(count)s step", "%(count)s steps", workflow.size) % {"count": workflow.size}
    failed, not_run = counts[Status.FAILED], counts[Status.NOT_RUN]
    ended_badly = []
    if failed:
        ended_badly.append(ngettext("%(n)s failed", "%(n)s failed", failed) % {"n": failed})
    if not_run:
        ended_badly.append(ngettext("%(n)s not run", "%(n)s not run", not_run) % {"n": not_run})
    return WorkflowRow(
        workflow=workflow,
        url=workflow.get_absolute_url(),
        label=gettext("%(name)s (%(size)s)") % {"name": workflow.name, "size": size} if workflow.name else size,
        counts=counts,
        failed_text=" · ".join(ended_badly),
        created=texts.moment(workflow.created_at),
    )


class Texts:
    """What every row of one render shares, translated or formatted once."""

    def __init__(self):
        self.operation = _memo(lambda row: row.label, key=lambda row: row.operation)
        self.status = _memo(lambda status: str(Status(status).label))
        self.cancel, self.retry = gettext("Cancel"), gettext("Retry")
        self.zone = timezone.get_current_timezone()
        clock = re.fullmatch(r"(.*[^\\])H:i:s", formats.get_format("DATETIME_FORMAT"))
        self.date_part = clock[1] if clock else None
        self.day = _memo(lambda local: formats.date_format(local, self.date_part), key=lambda local: local.date())
        self.input_labels = _memo(
            lambda row: [(spec.name, gettext(spec.label)) for spec in row.spec.inputs] if row.spec else None,
            key=lambda row: row.operation,
        )
        self.now = timezone.now()
        self.detail_url = _url_of("computation-detail")
        self.cancel_url, self.retry_url = _url_of("computation-cancel"), _url_of("computation-retry")

    def action(self, computation: Computation) -> tuple[str, str]:
        if computation.can_cancel:
            return self.cancel_url(computation.pk), self.cancel
        if computation.can_retry:
            return self.retry_url(computation.pk), self.retry
        return "", ""

    def labelled_inputs(self, computation: Computation) -> list[tuple[str, object]]:
        """Computation.labelled_inputs, each operation's labels translated once."""
        if (labels := self.input_labels(computation)) is None:
            return computation.labelled_inputs
        return [(label, computation.inputs.get(name)) for name, label in labels]

    def moment(self, value: datetime) -> Moment:
        local = timezone.localtime(value, self.zone)
        return Moment(local.isoformat(), self.exact(local), naturaltime(value))

    def exact(self, local: datetime) -> str:
        """formats.date_format(local, "DATETIME_FORMAT"), at a fifth of its cost for our formats (which end with the
        time to the second): the date part once per day, the time by strftime."""
        if self.date_part is None:
            return formats.date_format(local, "DATETIME_FORMAT")
        return self.day(local) + local.strftime("%H:%M:%S")


def _url_of(name: str) -> Callable[[int], str]:
    """reverse(name, args=[pk]) for many pks at the cost of one: the address with a stand-in id, filled in."""
    stand_in = 987654321
    pattern = reverse(name, args=[stand_in]).replace(str(stand_in), "{}")
    return pattern.format


def _memo[T, R](compute: Callable[[T], R], key: Callable[[T], object] = lambda value: value) -> Callable[[T], R]:
    seen: dict[object, R] = {}

    def lookup(value: T) -> R:
        found = key(value)
        if found not in seen:
            seen[found] = compute(value)
        return seen[found]

    return lookup
