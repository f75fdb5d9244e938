"""The computations' queryset: the queries pages make, and every state transition as one conditional UPDATE.

A duplicate delivery, a late cancel or a second click changes nothing it should not, and the same method serves one
row or a thousand. A run holds its row by its attempt number: the writes of a run (progress, outcome) apply only
while the row is still running that attempt, so a run that was cancelled or superseded can never record a result.
The transitions that end rows announce them (`computations_ended`) once their transaction commits.
"""

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import chain

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import connections, models, transaction
from django.db.models import Count, F, Func, Q, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Replace
from django.dispatch import Signal
from django.utils import timezone

from .. import changes, queues
from ..operations import OperationError
from .owned import OwnedQuerySet
from .status import COUNT_CAP, IN_FLIGHT, RETRYABLE, Status, StatusCounts

# Sent once the transaction of a transition that ended computations (succeeded, failed, cancelled) has committed, with
# `rows`: a queryset of the computations it ended. What an end sets off listens (tasks.webhooks.events); it runs after
# the commit so that it sees every other end committed before it, and it cannot undo the transition by failing.
computations_ended = Signal()


@dataclass(frozen=True)
class Page[Row: models.Model]:
    """One page of rows (computations), newest first."""

    rows: list[Row]
    # Cursors for the links to the neighbouring pages, None where there is none.
    newer_after: int | None
    older_before: int | None


def merged_page(
    sources: Sequence[models.QuerySet], *, before: int | None = None, after: int | None = None, size: int = 25
) -> Page:
    """One page of the rows any of `sources` gives, newest first, by keyset on the id: no OFFSET and no COUNT, so
    page 1 costs the same at any size. `before` gives the rows older than that id, `after` the rows just newer than
    it, neither the newest. Each source gives at most a page from the same cursor, and the page is the newest of
    their union, so each source's own index answers it whatever the table's size (the search's several kinds of
    match)."""

    def union(rows: Iterable[models.Model], *, newest_first: bool) -> list[models.Model]:
        unique = {row.pk: row for row in rows}
        return [unique[pk] for pk in sorted(unique, reverse=newest_first)][: size + 1]

    if after is not None:
        newer_than = (source.filter(pk__gt=after).order_by("pk")[: size + 1] for source in sources)
        rows = union(chain(*newer_than), newest_first=False)
        newer = rows[size - 1].pk if len(rows) > size else None
        rows = rows[:size][::-1]
        return Page(rows, newer_after=newer, older_before=rows[-1].pk if rows else after + 1)
    if before:
        sources = [source.filter(pk__lt=before) for source in sources]
    rows = union(chain(*(source.order_by("-pk")[: size + 1] for source in sources)), newest_first=True)
    older = rows[size - 1].pk if len(rows) > size else None
    rows = rows[:size]
    return Page(rows, newer_after=rows[0].pk if before and rows else None, older_before=older)


def _failure(error: OperationError | None) -> dict[str, object]:
    """The error's columns: its text in English, for the API, exports and logs, and its template and parameters,
    so that pages show it in the reader's language."""
    if error is None:
        return {"error": "", "error_detail": None}
    params = {name: str(value) for name, value in error.params.items()}
    return {"error": str(error), "error_detail": {"message": error.message, "params": params}}


# The attempt a transition is about to replace (its worker died, or a person retries it), appended to the row's
# earlier_attempts in the same UPDATE: no statement more in the worker's path. It reads the columns as they were,
# so it comes first in the SET list (MySQL and MariaDB assign left to right, each seeing those before it).
_ARCHIVED_ATTEMPT = RawSQL(
    "IF(`started_at` IS NULL, `earlier_attempts`, JSON_ARRAY_APPEND(COALESCE(`earlier_attempts`, JSON_ARRAY()),"
    " '$', JSON_OBJECT('attempt', `attempts`, 'worker', `worker`, 'started', `started_at`,"
    " 'ended', COALESCE(`finished_at`, `updated_at`), 'status', `status`)))",
    [],
    output_field=models.JSONField(),
)


def _stale(now: datetime) -> Q:
    # MySQL cannot UPDATE a table filtered by a subquery on itself, so transitions take this condition inline.
    return Q(
        status=Status.RUNNING,
        updated_at__lt=now - timedelta(seconds=settings.COMPUTATION_STALE_AFTER_SECONDS),
    )


class ComputationQuerySet(OwnedQuerySet):
    def in_flight(self) -> "ComputationQuerySet":
        return self.filter(status__in=IN_FLIGHT)

    def retryable(self) -> "ComputationQuerySet":
        return self.filter(status__in=RETRYABLE)

    def needing_a_task(self, *, empty_queues: Collection[str]) -> "ComputationQuerySet":
        """Rows that would never end unless their task is sent (again): queued ones the broker never took (it was
        down); running ones whose worker died; and, of a queue that is empty in the broker, queued ones whose task
        no worker is running (a worker that died held it, or a purge raced their sending). Each was last sent
        longer ago than a heartbeat's grace."""
        now = timezone.now()
        sent_long_ago = Q(enqueued_at__lt=now - timedelta(seconds=settings.COMPUTATION_STALE_AFTER_SECONDS))
        never_sent = Q(status=Status.QUEUED, enqueued_at__isnull=True)
        condition = never_sent | (_stale(now) & sent_long_ago)
        for queue in empty_queues:
            condition |= Q(status=Status.QUEUED) & sent_long_ago & queues.rows_of(queue)
        return self.filter(condition).order_by("pk")

    def queue_is_full(self) -> bool:
        """Whether COMPUTATION_MAX_QUEUED computations wait already: a bounded index scan, never a full count."""
        return self.filter(status=Status.QUEUED)[settings.COMPUTATION_MAX_QUEUED - 1 :].exists()

    def queue_room(self) -> int:
        """How many more computations may be queued before COMPUTATION_MAX_QUEUED wait (a bounded count)."""
        return self.filter(status=Status.QUEUED).room_below(settings.COMPUTATION_MAX_QUEUED)

    def queued_by(self, owner: AbstractBaseUser | None, address: str | None) -> "ComputationQuerySet | None":
        """What one client has waiting: the person's, or (no one signed in) the client address's; None for neither
        (the system's own submissions)."""
        if owner is not None:
            return self.filter(status=Status.QUEUED, owner=owner)
        if address:
            return self.filter(status=Status.QUEUED, owner__isnull=True, submitted_from=address)
        return None

    def room_below(self, cap: int) -> int:
        """How many more rows this may take before it holds `cap` (a count of at most `cap` index entries)."""
        return max(cap - self.order_by().values("pk")[:cap].count(), 0)

    def status_counts(self, *, cap: int = COUNT_CAP) -> StatusCounts:
        """The counts of every status, in one query whose cost does not grow with the table: each status is
        counted over at most `cap` + 1 entries of its index, so a count above `cap` means "more than `cap`"."""
        parts, params = [], []
        for status in Status.values:
            sql, status_params = self.filter(status=status).order_by().values("pk")[: cap + 1].query.sql_with_params()
            parts.append(f"SELECT %s, COUNT(*) FROM ({sql}) AS counted")  # noqa: S608 (compiled by the ORM)
            params += [status, *status_params]
        with connections[self.db].cursor() as cursor:
            cursor.execute(" UNION ALL ".join(parts), params)
            return StatusCounts(dict(cursor.fetchall()))

    def status_counts_by(self, group: str) -> dict[int, StatusCounts]:
        """The counts of each batch or workflow (`group`) among these rows, in one grouped query (for a page of
        them)."""
        counts: dict[int, dict[str, int]] = {}
        for key, status, count in self.order_by().values_list(group, "status").annotate(n=Count("pk")):
            counts.setdefault(key, {})[status] = count
        return {key: StatusCounts(by_status) for key, by_status in counts.items()}

    # Transitions. Each returns the number of rows it changed.

    def claim(self, *, worker: str) -> int:
        """Starts a new attempt on a queued row, or on a running one whose worker died, within the budget."""
        now = timezone.now()
        return self._update(
            self.filter(Q(status=Status.QUEUED) | _stale(now), attempts__lt=F("max_attempts")),
            now,
            earlier_attempts=_ARCHIVED_ATTEMPT,
            status=Status.RUNNING,
            attempts=F("attempts") + 1,
            progress=0,
            worker=worker[:255],
            started_at=now,
            finished_at=None,
        )

    def record_at_once(
        self, *, worker: str, started_at: datetime, result: str = "", error: OperationError | None = None
    ) -> int:
        """The outcome of an instant computation, recorded from queued in one UPDATE as one attempt: it holds no
        row while it runs (there is nothing to watch), and whichever delivery records first wins."""
        now = timezone.now()
        return self._end(
            self.filter(status=Status.QUEUED, attempts__lt=F("max_attempts")),
            now,
            status=Status.FAILED if error else Status.SUCCEEDED,
            attempts=F("attempts") + 1,
            worker=worker[:255],
            started_at=started_at,
            finished_at=now,
            progress=0 if error else 100,
            result=result,
            **_failure(error),
        )

    def report_progress(self, *, attempt: int, progress: int) -> int:
        """Writes progress and the heartbeat; 0 means the run no longer owns its row and must stop."""
        return self._update(self._held_by(attempt), timezone.now(), progress=progress)

    def succeed(self, *, attempt: int, result: str) -> int:
        now = timezone.now()
        return self._end(
            self._held_by(attempt), now, status=Status.SUCCEEDED, progress=100, result=result, finished_at=now
        )

    def fail(self, *, attempt: int, error: OperationError) -> int:
        now = timezone.now()
        return self._end(self._held_by(attempt), now, status=Status.FAILED, finished_at=now, **_failure(error))

    def give_up(self, *, error: OperationError) -> int:
        """Fails in-flight rows whose attempts are used up (each attempt's worker died)."""
        now = timezone.now()
        exhausted = self.filter(Q(status=Status.QUEUED) | _stale(now), attempts__gte=F("max_attempts"))
        return self._end(exhausted, now, status=Status.FAILED, finished_at=now, **_failure(error))

    def cancel(self, now: datetime | None = None) -> int:
        """A queued row never starts; a running one stops at its next progress report."""
        now = now or timezone.now()
        return self._end(self.in_flight(), now, status=Status.CANCELLED, finished_at=now)

    def requeue(self, now: datetime | None = None, *, status: Status = Status.QUEUED) -> int:
        """Queues failed or cancelled rows again with a fresh budget of attempts and a new task id each; the caller
        enqueues them (the rows it changed are those whose updated_at is `now`). A workflow's step that takes others'
        results goes back to waiting for them (`status` WAITING) instead."""
        return self._update(
            self.filter(status__in=RETRYABLE),
            now or timezone.now(),
            earlier_attempts=_ARCHIVED_ATTEMPT,
            status=status,
            # A new id per row, made by the database, so that one UPDATE serves any number of rows.
            task_id=Replace(Func(function="UUID", output_field=models.CharField()), Value("-"), Value("")),
            enqueued_at=timezone.now() if status == Status.QUEUED else None,
            max_attempts=F("attempts") + settings.COMPUTATION_MAX_ATTEMPTS,
            progress=0,
            result="",
            error="",
            worker="",
            started_at=None,
            finished_at=None,
        )

    # A workflow's steps (tasks.workflows.settling): each from the status it was read in, so that of two settles at
    # once, one changes a step.

    def release(self, *, inputs: dict, now: datetime) -> int:
        """Queues a waiting step with its inputs, the results of the steps it waited for filled in."""
        return self._update(
            self.filter(status=Status.WAITING), now, status=Status.QUEUED, inputs=inputs, enqueued_at=now
        )

    def refuse(self, *, error: OperationError, now: datetime) -> int:
        """Fails a waiting step whose input cannot take a result it was to be given (out of its bounds)."""
        return self._end(
            self.filter(status=Status.WAITING), now, status=Status.FAILED, finished_at=now, **_failure(error)
        )

    def hold_back(self, *, error: OperationError, now: datetime) -> int:
        """Ends waiting steps as not run: a step they depend on failed or was cancelled."""
        waiting = self.filter(status=Status.WAITING)
        return self._end(waiting, now, status=Status.NOT_RUN, finished_at=now, **_failure(error))

    def wait_again(self, now: datetime) -> int:
        """Steps not run whose failed or cancelled ancestors were all retried: waiting for them again."""
        return self._update(
            self.filter(status=Status.NOT_RUN), now, status=Status.WAITING, finished_at=None, **_failure(None)
        )

    def _held_by(self, attempt: int) -> "ComputationQuerySet":
        return self.filter(status=Status.RUNNING, attempts=attempt)

    def _end(self, rows: "ComputationQuerySet", now: datetime, *, status: Status, **changes_: object) -> int:
        """A transition of `rows`, some of these, to an end `status`: those it changed are announced once it commits
        (computations_ended), found again among these by their new status and the transition's moment."""
        changed = self._update(rows, now, status=status, **changes_)
        if changed:
            ended = self.filter(status=status, updated_at=now)
            transaction.on_commit(lambda: computations_ended.send(self.model, rows=ended), robust=True)
        return changed

    @staticmethod
    def _update(queryset: "ComputationQuerySet", now: datetime, **changes_: object) -> int:
        changed = queryset.update(**changes_, updated_at=now)  # last: _ARCHIVED_ATTEMPT reads the one before
        if changed:
            transaction.on_commit(changes.record_change)
        return changed
