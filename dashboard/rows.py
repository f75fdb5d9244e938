"""The list's rows as the template shows them, worked out in Python once per render.

The template engine pays for every lookup, filter, include and translation inside a loop: at 25 rows they were
most of a render (about 1,300 lookups, 50 includes and 350 translations). Here each row's texts, labels and
addresses are plain attributes, and what is the same for every row (an operation's name, a status's label, the
buttons' words) is translated once.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from django.urls import reverse
from django.utils import formats, timezone
from django.utils.text import Truncator
from django.utils.translation import gettext, ngettext

from tasks.models import AuditEntry, Batch, Computation, Status, StatusCounts

RESULT_CHARACTERS, ERROR_CHARACTERS = 40, 80


@dataclass(frozen=True)
class ComputationRow:
    is_batch: ClassVar[bool] = False
    pk: int
    url: str
    label: str
    inputs: str
    status: str
    status_label: str
    progress: int | None  # while running
    progress_label: str
    result: str
    error: str
    created_iso: str
    created: str
    action: str  # where its Cancel or Retry button posts, if it has one
    action_label: str


@dataclass(frozen=True)
class BatchRow:
    is_batch: ClassVar[bool] = True
    batch: Batch
    url: str
    label: str
    range_text: str
    counts: StatusCounts
    failed_text: str  # "3 failed", or nothing
    created_iso: str
    created: str


@dataclass(frozen=True)
class ValueRow:
    """A row of a batch's table of values: a computation without the times and actions the list shows."""

    pk: int
    url: str
    varied_value: object
    status: str
    status_label: str
    progress: int | None
    progress_label: str
    result: str
    error: str


@dataclass(frozen=True)
class HistoryLine:
    iso: str
    when: str
    text: str  # what was done, from where, by whom, to how many


def computation_row(computation: Computation) -> ComputationRow:
    """One computation as the list shows it: its page shows its status and its button the same way."""
    return _row(computation, _Texts())


def history_lines(entries: Iterable[AuditEntry]) -> list[HistoryLine]:
    """A computation's audit entries as its page lists them."""
    texts, lines = _Texts(), []
    for entry in entries:
        text = gettext("%(action)s, %(source)s") % {
            "action": entry.get_action_display(), "source": entry.get_source_display()
        }  # fmt: skip
        if entry.user:
            text += gettext(" (%(user)s)") % {"user": entry.user.get_username()}
        if entry.requested > 1:
            text += ngettext(", with %(n)s computation", ", with %(n)s computations", entry.requested) % {
                "n": entry.requested
            }  # fmt: skip
        lines.append(HistoryLine(*texts.moment(entry.created_at), text))
    return lines


def list_title(running: int) -> str:
    """The list's heading in the tab's title: how many are running, if any."""
    if not running:
        return gettext("Computations")
    return ngettext("(%(n)s running) Computations", "(%(n)s running) Computations", running) % {"n": running}


def list_rows(computations: Iterable[Computation]) -> list[ComputationRow | BatchRow]:
    """The rows of a page of the list: a batch's row where `_show_batches` gave it one (shown_batch)."""
    texts = _Texts()
    return [
        _batch_row(row.shown_batch, row.batch_counts, texts) if getattr(row, "shown_batch", None) else _row(row, texts)
        for row in computations
    ]


def value_rows(computations: Iterable[Computation], varied: str) -> list[ValueRow]:
    """A batch's values: each computation's `varied` input, its status and its outcome."""
    texts = _Texts()
    return [_value_row(computation, varied, texts) for computation in computations]


def _value_row(computation: Computation, varied: str, texts: "_Texts") -> ValueRow:
    return ValueRow(
        pk=computation.pk, url=texts.detail_url(computation.pk), varied_value=computation.inputs.get(varied),
        status=computation.status, status_label=texts.status(computation.status), **_outcome(computation),
    )  # fmt: skip


def _outcome(computation: Computation) -> dict:
    """What a row shows of how far a computation got: its progress while running, or its result or error."""
    error = computation.error_text if computation.error else ""
    running = computation.status == Status.RUNNING
    return {
        "progress": computation.progress if running else None,
        "progress_label": gettext("Progress of #%(id)s") % {"id": computation.pk} if running else "",
        "result": "" if error else _cut(computation.result, RESULT_CHARACTERS),
        "error": _cut(error, ERROR_CHARACTERS),
    }


def _cut(text: str, characters: int) -> str:
    # Most texts are short: Truncator's normalising and measuring is then a third of a row's cost, for nothing.
    return text if len(text) <= characters else Truncator(text).chars(characters)


def _row(computation: Computation, texts: "_Texts") -> ComputationRow:
    action, action_label = texts.action(computation)
    created_iso, created = texts.moment(computation.created_at)
    return ComputationRow(
        pk=computation.pk,
        url=texts.detail_url(computation.pk),
        label=texts.operation(computation),
        inputs=computation.inputs_text,
        status=computation.status,
        status_label=texts.status(computation.status),
        **_outcome(computation),
        created_iso=created_iso,
        created=created,
        action=action,
        action_label=action_label,
    )


def _batch_row(batch: Batch, counts: StatusCounts, texts: "_Texts") -> BatchRow:
    created_iso, created = texts.moment(batch.created_at)
    failed = counts[Status.FAILED]
    return BatchRow(
        batch=batch, url=batch.get_absolute_url(), label=texts.operation(batch), range_text=batch.range_text,
        counts=counts, failed_text=ngettext("%(n)s failed", "%(n)s failed", failed) % {"n": failed} if failed else "",
        created_iso=created_iso, created=created,
    )  # fmt: skip


class _Texts:
    """What every row of one render shares, translated or formatted once."""

    def __init__(self):
        self.operation = _memo(lambda row: row.label, key=lambda row: row.operation)
        self.status = _memo(lambda status: str(Status(status).label))
        self.cancel, self.retry = gettext("Cancel"), gettext("Retry")
        self.zone = timezone.get_current_timezone()
        self.detail_url = _url_of("computation-detail")
        self.cancel_url, self.retry_url = _url_of("computation-cancel"), _url_of("computation-retry")

    def action(self, computation: Computation) -> tuple[str, str]:
        if computation.can_cancel:
            return self.cancel_url(computation.pk), self.cancel
        if computation.can_retry:
            return self.retry_url(computation.pk), self.retry
        return "", ""

    def moment(self, value: datetime) -> tuple[str, str]:
        """The machine-readable and the reader's form of a time, in the reader's zone."""
        local = timezone.localtime(value, self.zone)
        return local.isoformat(), formats.date_format(local, "DATETIME_FORMAT")


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
