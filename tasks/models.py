"""A computation's row and its state transitions.

Status moves queued → running → succeeded | failed, and queued | running → cancelled; a failed or cancelled one can
be queued again (retry). Every transition is one conditional UPDATE on a queryset, so a duplicate delivery, a late
cancel or a second click changes nothing it should not, and the same method serves one row or a thousand.

A run holds its row by its attempt number: the writes of a run (progress, outcome) apply only while the row is
still running that attempt, so a run that was cancelled or superseded can never record a result.
"""

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import connections, models, transaction
from django.db.models import F, Func, Q, Value
from django.db.models.functions import Replace
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from . import changes
from .operations import REGISTRY, Input, Operation, OperationError


class Status(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


IN_FLIGHT = (Status.QUEUED, Status.RUNNING)
# Counts shown per status stop at this (a page reads at most this many index entries per status).
COUNT_CAP = 10_000
RETRYABLE = (Status.FAILED, Status.CANCELLED)


def default_max_attempts() -> int:
    return settings.COMPUTATION_MAX_ATTEMPTS


@dataclass(frozen=True)
class Page:
    rows: list["Computation"]
    # Cursors for the links to the neighbouring pages, None where there is none.
    newer_after: int | None
    older_before: int | None


def translate_error(message: str, params: Mapping[str, object], inputs: Sequence[Input] = ()) -> str:
    """An operation's error in the reader's language: its template translated, and the input it names (by its
    name, as operations are free of Django) shown by its translated label."""
    params = dict(params)
    labels = {spec.name: spec.label for spec in inputs}
    if params.get("input") in labels:
        params["input"] = gettext(labels[params["input"]])
    return gettext(message) % params if params else gettext(message)


def _failure(error: OperationError | None) -> dict[str, object]:
    """The error's columns: its text in English, for the API, exports and logs, and its template and parameters,
    so that pages show it in the reader's language."""
    if error is None:
        return {"error": "", "error_detail": None}
    params = {name: str(value) for name, value in error.params.items()}
    return {"error": str(error), "error_detail": {"message": error.message, "params": params}}


def _stale(now: datetime) -> Q:
    # MySQL cannot UPDATE a table filtered by a subquery on itself, so transitions take this condition inline.
    return Q(
        status=Status.RUNNING,
        updated_at__lt=now - timedelta(seconds=settings.COMPUTATION_STALE_AFTER_SECONDS),
    )


class ComputationQuerySet(models.QuerySet):
    def in_flight(self) -> "ComputationQuerySet":
        return self.filter(status__in=IN_FLIGHT)

    def retryable(self) -> "ComputationQuerySet":
        return self.filter(status__in=RETRYABLE)

    def newest_first(self) -> "ComputationQuerySet":
        return self.order_by("-pk")

    def visible_to(self, owner: "AbstractBaseUser | None") -> "ComputationQuerySet":
        """The computations of `owner`; all of them for None (accounts off, or a staff member)."""
        return self if owner is None else self.filter(owner=owner)

    def page(self, *, before: int | None = None, after: int | None = None, size: int = 25) -> Page:
        """One page, newest first, by keyset on the id: no OFFSET and no COUNT, so page 1 costs the same at any size.

        `before` gives the rows older than that id, `after` the rows just newer than it, neither the newest.
        """
        if after is not None:
            rows = list(self.filter(pk__gt=after).order_by("pk")[: size + 1])
            newer = rows[size - 1].pk if len(rows) > size else None
            rows = rows[:size][::-1]
            return Page(rows, newer_after=newer, older_before=rows[-1].pk if rows else after + 1)
        rows = list((self.filter(pk__lt=before) if before else self).newest_first()[: size + 1])
        older = rows[size - 1].pk if len(rows) > size else None
        rows = rows[:size]
        return Page(rows, newer_after=rows[0].pk if before and rows else None, older_before=older)

    def needing_a_task(self, *, queue_is_empty: bool) -> "ComputationQuerySet":
        """Rows that would never end unless their task is sent (again): queued ones the broker never took (it was
        down); running ones whose worker died; and, while the broker's queue is empty, queued ones whose task no
        worker is running (a worker that died held it). Each was last sent longer ago than a heartbeat's grace."""
        now = timezone.now()
        sent_long_ago = Q(enqueued_at__lt=now - timedelta(seconds=settings.COMPUTATION_STALE_AFTER_SECONDS))
        never_sent = Q(status=Status.QUEUED, enqueued_at__isnull=True)
        condition = never_sent | (_stale(now) & sent_long_ago)
        if queue_is_empty:
            condition |= Q(status=Status.QUEUED) & sent_long_ago
        return self.filter(condition).order_by("pk")

    def queue_is_full(self) -> bool:
        """Whether COMPUTATION_MAX_QUEUED computations wait already: a bounded index scan, never a full count."""
        return self.filter(status=Status.QUEUED)[settings.COMPUTATION_MAX_QUEUED - 1 :].exists()

    def queue_room(self) -> int:
        """How many more computations may be queued before COMPUTATION_MAX_QUEUED wait (a bounded count)."""
        cap = settings.COMPUTATION_MAX_QUEUED
        return max(cap - self.filter(status=Status.QUEUED).order_by().values("pk")[:cap].count(), 0)

    def count_by_status(self, *, cap: int = COUNT_CAP) -> dict[str, int]:
        """{status: count} for every status, in one query whose cost does not grow with the table: each status is
        counted over at most `cap` + 1 entries of its index, so a count above `cap` means "more than `cap`"."""
        parts, params = [], []
        for status in Status.values:
            sql, status_params = self.filter(status=status).order_by().values("pk")[: cap + 1].query.sql_with_params()
            parts.append(f"SELECT %s, COUNT(*) FROM ({sql}) AS counted")  # noqa: S608 (compiled by the ORM)
            params += [status, *status_params]
        with connections[self.db].cursor() as cursor:
            cursor.execute(" UNION ALL ".join(parts), params)
            return dict(cursor.fetchall())

    # Transitions. Each returns the number of rows it changed.

    def claim(self, *, worker: str) -> int:
        """Starts a new attempt on a queued row, or on a running one whose worker died, within the budget."""
        now = timezone.now()
        return self._update(
            self.filter(Q(status=Status.QUEUED) | _stale(now), attempts__lt=F("max_attempts")),
            now,
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
        return self._update(
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
        return self._update(
            self._held_by(attempt), now, status=Status.SUCCEEDED, progress=100, result=result, finished_at=now
        )

    def fail(self, *, attempt: int, error: OperationError) -> int:
        now = timezone.now()
        return self._update(self._held_by(attempt), now, status=Status.FAILED, finished_at=now, **_failure(error))

    def give_up(self, *, error: OperationError) -> int:
        """Fails in-flight rows whose attempts are used up (each attempt's worker died)."""
        now = timezone.now()
        exhausted = self.filter(Q(status=Status.QUEUED) | _stale(now), attempts__gte=F("max_attempts"))
        return self._update(exhausted, now, status=Status.FAILED, finished_at=now, **_failure(error))

    def cancel(self, now: datetime | None = None) -> int:
        """A queued row never starts; a running one stops at its next progress report."""
        now = now or timezone.now()
        return self._update(self.in_flight(), now, status=Status.CANCELLED, finished_at=now)

    def requeue(self, now: datetime | None = None) -> int:
        """Queues failed or cancelled rows again with a fresh budget of attempts and a new task id each; the caller
        enqueues them (the rows it changed are those whose updated_at is `now`)."""
        return self._update(
            self.filter(status__in=RETRYABLE),
            now or timezone.now(),
            status=Status.QUEUED,
            # A new id per row, made by the database, so that one UPDATE serves any number of rows.
            task_id=Replace(Func(function="UUID", output_field=models.CharField()), Value("-"), Value("")),
            enqueued_at=timezone.now(),
            max_attempts=F("attempts") + settings.COMPUTATION_MAX_ATTEMPTS,
            progress=0,
            result="",
            error="",
            worker="",
            started_at=None,
            finished_at=None,
        )

    def _held_by(self, attempt: int) -> "ComputationQuerySet":
        return self.filter(status=Status.RUNNING, attempts=attempt)

    @staticmethod
    def _update(queryset: "ComputationQuerySet", now: datetime, **changes_: object) -> int:
        changed = queryset.update(updated_at=now, **changes_)
        if changed:
            transaction.on_commit(changes.record_change)
        return changed


class OfAnOperation:
    """A row that names an operation of the registry: the operation, and its name in the reader's language."""

    operation: str

    @property
    def spec(self) -> Operation | None:
        return REGISTRY.get(self.operation)

    @property
    def label(self) -> str:
        return gettext(self.spec.label) if self.spec else self.operation


class BatchQuerySet(models.QuerySet):
    def visible_to(self, owner: "AbstractBaseUser | None") -> "BatchQuerySet":
        return self if owner is None else self.filter(owner=owner)


class Batch(OfAnOperation, models.Model):
    """One operation over a range of one input's values (the others fixed): a computation per value."""

    operation = models.CharField(_("operation"), max_length=64)
    varied = models.CharField(_("varied input"), max_length=32)
    # The range, as exact decimal text: start, start + step, ... up to stop included.
    start = models.CharField(pgettext_lazy("a range", "from"), max_length=40)
    stop = models.CharField(pgettext_lazy("a range", "to"), max_length=40)
    step = models.CharField(_("step"), max_length=40)
    fixed_inputs = models.JSONField(_("other inputs"))
    work_seconds = models.PositiveSmallIntegerField(_("simulated work (seconds)"), default=0)
    size = models.PositiveIntegerField(_("computations"))
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    # As a computation's: posting the same form twice makes one batch.
    idempotency_key = models.UUIDField(_("idempotency key"), unique=True, null=True, blank=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner"), null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip

    objects = BatchQuerySet.as_manager()

    class Meta:
        verbose_name = _("batch")
        verbose_name_plural = _("batches")

    def __str__(self) -> str:
        return gettext("Batch #%(id)s: %(label)s") % {"id": self.pk, "label": self.label}

    def get_absolute_url(self) -> str:
        return reverse("batch-detail", args=[self.pk])

    @property
    def range_text(self) -> str:
        """The range and the fixed inputs as a person reads them: "y = 1 … 10, step 1; x = 2"."""
        labels = {spec.name: gettext(spec.label) for spec in self.spec.inputs} if self.spec else {}
        text = gettext("%(name)s = %(start)s … %(stop)s, step %(step)s") % {
            "name": labels.get(self.varied, self.varied),
            "start": self.start,
            "stop": self.stop,
            "step": self.step,
        }
        fixed = ", ".join(f"{labels.get(name, name)} = {value}" for name, value in self.fixed_inputs.items())
        return f"{text}; {fixed}" if fixed else text


class Computation(OfAnOperation, models.Model):
    operation = models.CharField(_("operation"), max_length=64)
    inputs = models.JSONField(_("inputs"))
    work_seconds = models.PositiveSmallIntegerField(_("simulated work (seconds)"), default=0)
    status = models.CharField(_("status"), max_length=16, choices=Status, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(_("progress (%)"), default=0)
    result = models.TextField(_("result"), blank=True)
    error = models.TextField(_("error"), blank=True)
    # {"message": its gettext_noop template, "params": {...}}: `error` in the reader's language (error_text).
    error_detail = models.JSONField(_("error, translatable"), null=True, blank=True, editable=False)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    max_attempts = models.PositiveSmallIntegerField(_("attempts allowed"), default=default_max_attempts)
    worker = models.CharField(_("worker"), max_length=255, blank=True)
    task_id = models.UUIDField(_("Celery task id"), unique=True, default=uuid.uuid4, editable=False)
    # When its task was last handed to the broker; empty while the broker has not taken it (it was down).
    enqueued_at = models.DateTimeField(_("sent to the queue"), null=True, blank=True)
    # Sent by the form: a second post of the same form (a double click, a browser's retry) finds this row.
    idempotency_key = models.UUIDField(_("idempotency key"), unique=True, null=True, blank=True, editable=False)
    batch = models.ForeignKey(
        Batch, verbose_name=_("batch"), null=True, blank=True, on_delete=models.CASCADE, related_name="computations"
    )
    # The unfiltered list shows a batch as one row, its first computation's: the others are not listed there.
    in_main_list = models.BooleanField(_("in the main list"), default=True)
    # Who submitted it, when signed in; with DASHBOARD_LOGIN_REQUIRED each person sees only their own.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner"), null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+", db_index=False,
    )  # fmt: skip
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    # Moved by every transition; a running row's heartbeat.
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)

    objects = ComputationQuerySet.as_manager()

    class Meta:
        verbose_name = _("computation")
        verbose_name_plural = _("computations")
        # InnoDB appends the primary key to every index, so each serves "filter, newest first" without a sort.
        indexes = [
            models.Index(fields=["status"], name="computation_status"),
            models.Index(fields=["operation"], name="computation_operation"),
            models.Index(fields=["status", "operation"], name="computation_status_operation"),
            models.Index(fields=["status", "updated_at"], name="computation_status_updated"),
            models.Index(fields=["status", "enqueued_at"], name="computation_status_enqueued"),
            models.Index(fields=["in_main_list"], name="computation_main_list"),
            models.Index(fields=["batch", "status"], name="computation_batch_status"),
            # Exports by creation date, the admin's date filter; the activity chart by finishing time.
            models.Index(fields=["created_at"], name="computation_created"),
            models.Index(fields=["finished_at", "status"], name="computation_finished_status"),
            # One person's list and counts (these also serve the owner's foreign key).
            models.Index(fields=["owner", "in_main_list"], name="computation_owner_main_list"),
            models.Index(fields=["owner", "status"], name="computation_owner_status"),
        ]

    def __str__(self) -> str:
        return gettext("#%(id)s %(label)s") % {"id": self.pk, "label": self.label}

    def get_absolute_url(self) -> str:
        return reverse("computation-detail", args=[self.pk])

    @property
    def error_text(self) -> str:
        """The error in the reader's language (rows failed before error_detail existed show `error` as it is)."""
        if not self.error_detail:
            return self.error
        inputs = self.spec.inputs if self.spec else ()
        return translate_error(self.error_detail["message"], self.error_detail.get("params", {}), inputs)

    @property
    def inputs_text(self) -> str:
        """The inputs as a person reads them: "x = 1.5, y = 2"."""
        if self.spec is None:
            return ", ".join(f"{name} = {value}" for name, value in self.inputs.items())
        return ", ".join(f"{gettext(spec.label)} = {self.inputs.get(spec.name)}" for spec in self.spec.inputs)

    @property
    def is_instant(self) -> bool:
        return self.spec is not None and self.spec.is_instant(self.work_seconds)

    @property
    def time_limit(self) -> int:
        """Seconds a run may take (an unknown operation's run fails at once)."""
        return self.spec.limit_for(self.work_seconds) if self.spec else self.work_seconds

    @property
    def is_in_flight(self) -> bool:
        return self.status in IN_FLIGHT

    @property
    def can_cancel(self) -> bool:
        return self.status in IN_FLIGHT

    @property
    def can_retry(self) -> bool:
        return self.status in RETRYABLE

    @property
    def run_time(self) -> timedelta | None:
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


@receiver(post_delete, sender=Computation)
def _record_deletion(**kwargs: object) -> None:
    # A row deleted (in the admin) changes the lists that showed it.
    transaction.on_commit(changes.record_change)


class AuditEntryQuerySet(models.QuerySet):
    """Append-only: entries are created, never changed or deleted."""

    def update(self, **kwargs: object) -> int:
        raise PermissionError("The audit trail is append-only.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise PermissionError("The audit trail is append-only.")


class AuditEntry(models.Model):
    """Who cancelled or retried what, when and from where: one entry per action, single or bulk."""

    class Action(models.TextChoices):
        CANCEL = "cancel", _("Cancel")
        RETRY = "retry", _("Retry")

    class Source(models.TextChoices):
        DASHBOARD = "dashboard", _("Dashboard")
        ADMIN = "admin", _("Admin site")
        API = "api", _("API")

    created_at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    action = models.CharField(_("action"), max_length=16, choices=Action)
    source = models.CharField(pgettext_lazy("where an action came from", "from"), max_length=16, choices=Source)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    address = models.GenericIPAddressField(_("client address"), null=True, blank=True)
    # {"ids": [...]} for a selection, {"filter": {...}} for "all matching".
    selection = models.JSONField(_("selection"))
    requested = models.PositiveIntegerField(_("computations selected"))
    changed = models.PositiveIntegerField(_("computations changed"))
    computations = models.ManyToManyField(Computation, verbose_name=_("computations"), related_name="audit_entries")

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit trail")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} ×{self.changed} ({self.created_at:%Y-%m-%d %H:%M:%S})"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None:
            raise PermissionError("The audit trail is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise PermissionError("The audit trail is append-only.")
