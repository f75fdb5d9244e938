"""The audit trail: who cancelled or retried what, or steered which queue or worker, when and from where."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from .computation import Computation


class AuditEntryQuerySet(models.QuerySet):
    """Append-only: entries are created, never changed or deleted."""

    def update(self, **kwargs: object) -> int:
        raise PermissionError("The audit trail is append-only.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise PermissionError("The audit trail is append-only.")


class AuditEntry(models.Model):
    """Who cancelled or retried what, when and from where: one entry per action, single or bulk."""

    class Action(models.TextChoices):
        SUBMIT = "submit", _("Submit")  # through the API: the page's submissions are the rows themselves
        CANCEL = "cancel", _("Cancel")
        RETRY = "retry", _("Retry")
        # An operator's, on a queue or a worker (tasks.control): their selection names it.
        PAUSE = "pause", _("Pause queue")
        RESUME = "resume", _("Resume queue")
        PURGE = "purge", _("Purge queue")
        GROW = "grow", _("Grow pool")
        SHRINK = "shrink", _("Shrink pool")
        SHUT_DOWN = "shutdown", _("Shut down worker")
        # On a schedule (tasks.scheduling): their selection names it.
        CREATE_SCHEDULE = "create-schedule", _("Create schedule")
        PAUSE_SCHEDULE = "pause-schedule", _("Pause schedule")
        RESUME_SCHEDULE = "resume-schedule", _("Resume schedule")
        RUN_SCHEDULE = "run-schedule", _("Run schedule now")
        DELETE_SCHEDULE = "delete-schedule", _("Delete schedule")

    class Source(models.TextChoices):
        DASHBOARD = "dashboard", _("Dashboard")
        ADMIN = "admin", _("Admin site")
        API = "api", _("API")

    created_at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    action = models.CharField(_("action"), max_length=16, choices=Action)
    source = models.CharField(pgettext_lazy("where an action came from", "from"), max_length=16, choices=Source)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    address = models.GenericIPAddressField(_("client address"), null=True, blank=True)
    # The name of the API token the action came with, kept as it was when the token is gone.
    token_name = models.CharField(_("API token"), max_length=100, blank=True, default="")
    # {"ids": [...]} for a selection, {"filter": {...}} for "all matching", {"queue": name}, {"worker": name} or
    # {"schedule": id, "name": name}.
    selection = models.JSONField(_("selection"))
    requested = models.PositiveIntegerField(_("computations selected"))
    changed = models.PositiveIntegerField(_("computations changed"))
    computations = models.ManyToManyField(
        Computation, verbose_name=_("computations"), related_name="audit_entries", through="AuditedComputation"
    )

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

    @property
    def pruned(self) -> int:
        """How many of the computations this entry changed are gone, pruned by retention (tasks.retention)."""
        return self.links.count() - self.computations.count()


class AuditedComputation(models.Model):
    """A computation an audit entry acted on. The link outlives the computation: retention deletes computations,
    never the trail, so the link keeps the id of one that was pruned (no foreign key constraint, nothing cascades)
    and the entry can say how many of its computations are gone."""

    entry = models.ForeignKey(AuditEntry, on_delete=models.CASCADE, db_column="auditentry_id", related_name="links")
    computation = models.ForeignKey(
        Computation, on_delete=models.DO_NOTHING, db_constraint=False, db_column="computation_id", related_name="+"
    )

    class Meta:
        db_table = "tasks_auditentry_computations"
        unique_together = [("entry", "computation")]
        verbose_name = _("audit trail link")
        verbose_name_plural = _("audit trail links")

    def __str__(self) -> str:
        return f"{self.entry_id} → #{self.computation_id}"
