"""A computation's row, and a batch's: one operation over a range of one input's values."""

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models import Exists, OuterRef
from django.db.models.functions import Left
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from .. import changes
from ..operations import REGISTRY, Input, Operation
from .owned import Owned, OwnedQuerySet, owner_field
from .queryset import ComputationQuerySet
from .status import IN_FLIGHT, RETRYABLE, Status

VALUE_LENGTH = 64  # of what the search compares: an input's value, a result's beginning


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def default_max_attempts() -> int:
    return settings.COMPUTATION_MAX_ATTEMPTS


def translate_error(message: str, params: Mapping[str, object], inputs: Sequence[Input] = ()) -> str:
    """An operation's error in the reader's language: its template translated, and the input it names (by its
    name, as operations are free of Django) shown by its translated label."""
    params = dict(params)
    labels = {spec.name: spec.label for spec in inputs}
    if params.get("input") in labels:
        params["input"] = gettext(labels[params["input"]])
    return gettext(message) % params if params else gettext(message)


class OfAnOperation:
    """A row that names an operation of the registry: the operation, and its name in the reader's language."""

    operation: str

    @property
    def spec(self) -> Operation | None:
        return REGISTRY.get(self.operation)

    @property
    def label(self) -> str:
        return gettext(self.spec.label) if self.spec else self.operation


class BatchQuerySet(OwnedQuerySet):
    def end(self, now: datetime) -> int:
        """Marks these batches ended when none of their computations is queued or running, once: run by each of their
        computations' ends, it changes a batch's row for the first that finds them all ended, and never again."""
        in_flight = Computation.objects.filter(batch=OuterRef("pk"), status__in=IN_FLIGHT)
        return self.filter(ended_at__isnull=True).exclude(Exists(in_flight)).update(ended_at=now)


class Batch(OfAnOperation, Owned):
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
    # When the first of its computations' ends found none of them queued or running (BatchQuerySet.end): what sends
    # its webhooks' batch.ended once. A computation retried after it does not end the batch again.
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True, editable=False)

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
    # The result as the search finds it (search.py): the database keeps it right through every write.
    result_key = models.GeneratedField(
        expression=Left("result", VALUE_LENGTH),
        output_field=models.CharField(max_length=VALUE_LENGTH),
        db_persist=True,
        verbose_name=_("result, as searched"),
    )
    error = models.TextField(_("error"), blank=True)
    # {"message": its gettext_noop template, "params": {...}}: `error` in the reader's language (error_text).
    error_detail = models.JSONField(_("error, translatable"), null=True, blank=True, editable=False)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    max_attempts = models.PositiveSmallIntegerField(_("attempts allowed"), default=default_max_attempts)
    worker = models.CharField(_("worker"), max_length=255, blank=True)
    # The attempts before the current one, each {attempt, worker, started, ended, status} (UTC), oldest first:
    # written by the transition that replaced it (queryset.py), read by the computation's timeline.
    earlier_attempts = models.JSONField(_("earlier attempts"), null=True, blank=True, editable=False)
    task_id = models.UUIDField(_("Celery task id"), unique=True, default=uuid.uuid4, editable=False)
    # When its task was last handed to the broker; empty while the broker has not taken it (it was down).
    enqueued_at = models.DateTimeField(_("sent to the queue"), null=True, blank=True)
    # Sent by the form: a second post of the same form (a double click, a browser's retry) finds this row.
    idempotency_key = models.UUIDField(_("idempotency key"), unique=True, null=True, blank=True, editable=False)
    batch = models.ForeignKey(
        Batch, verbose_name=_("batch"), null=True, blank=True, on_delete=models.CASCADE, related_name="computations"
    )
    # A workflow's step, by its number there (1, 2, ...): tasks.workflows sends it once those it depends on succeeded.
    workflow = models.ForeignKey(
        "Workflow", verbose_name=_("workflow"), null=True, blank=True, on_delete=models.CASCADE, related_name="steps"
    )
    step = models.PositiveSmallIntegerField(_("step"), null=True, blank=True)
    # The unfiltered list shows a batch (a workflow) as one row, its first computation's (step's): the others are not
    # listed there. Not indexed on its own: MariaDB then reads a page backwards on the primary key, at most a batch's
    # hidden rows more than the page. Given an index on the flag, it took that index for the id order and walked every
    # newer entry to reach a cursor deep in the table (700,000 entries, 1.1 s, at a million rows), with the id in the
    # index too.
    in_main_list = models.BooleanField(_("in the main list"), default=True)
    # Who submitted it, when signed in; with DASHBOARD_LOGIN_REQUIRED each person sees only their own.
    owner = owner_field(db_index=False)
    # The client address it came from, when no one was signed in: what one address may keep queued is capped.
    submitted_from = models.GenericIPAddressField(_("submitted from"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    # Moved by every transition; a running row's heartbeat.
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)

    objects = ComputationQuerySet.as_manager()

    class Meta:
        verbose_name = _("computation")
        verbose_name_plural = _("computations")
        # The operators' (dashboard.web.access): the groups "Read-only operators" and "Operators" carry them.
        permissions = [
            ("oversee", "Can see everyone's computations, the workers, the queues and the storage"),
            ("operate", "Can steer queues and workers, and act on anyone's computations and schedules"),
        ]
        # InnoDB appends the primary key to every index, so each serves "filter, newest first" without a sort.
        constraints = [
            models.UniqueConstraint(fields=["workflow", "step"], name="computation_workflow_step"),
        ]
        indexes = [
            models.Index(fields=["status"], name="computation_status"),
            models.Index(fields=["operation"], name="computation_operation"),
            models.Index(fields=["status", "operation"], name="computation_status_operation"),
            models.Index(fields=["status", "updated_at"], name="computation_status_updated"),
            models.Index(fields=["status", "enqueued_at"], name="computation_status_enqueued"),
            models.Index(fields=["batch", "status"], name="computation_batch_status"),
            models.Index(fields=["result_key"], name="computation_result_key"),
            # Exports by creation date, the admin's date filter; the activity chart by finishing time.
            models.Index(fields=["created_at"], name="computation_created"),
            models.Index(fields=["finished_at", "status"], name="computation_finished_status"),
            # One person's list and counts (these also serve the owner's foreign key).
            models.Index(fields=["owner", "in_main_list"], name="computation_owner_main_list"),
            models.Index(fields=["owner", "status"], name="computation_owner_status"),
            # What one address keeps queued (its cap).
            models.Index(fields=["submitted_from", "status"], name="computation_address_status"),
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
    def attempts_before(self) -> list[dict]:
        """The earlier attempts, oldest first, their times as aware datetimes (the database wrote them as UTC)."""
        return [
            {**attempt, "started": _utc(attempt["started"]), "ended": _utc(attempt["ended"])}
            for attempt in self.earlier_attempts or ()
        ]

    @property
    def labelled_inputs(self) -> list[tuple[str, object]]:
        """Each input's label, in the reader's language, and its value."""
        if self.spec is None:
            return list(self.inputs.items())
        return [(gettext(spec.label), self.inputs.get(spec.name)) for spec in self.spec.inputs]

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
    # A row deleted through the ORM (its batch's cascade, a shell; never the admin, which deletes nothing) changes
    # the lists that showed it. Retention's prune deletes in one statement, without this signal.
    transaction.on_commit(changes.record_change)
