"""A workflow: computations (its steps) that feed each other, as rows. Its edges say which step's result goes into
which input of another, or that one waits for another; the steps themselves are computations with a workflow and a
number (tasks.workflows moves them on)."""

from django.db import models
from django.db.models import Exists, OuterRef
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from .owned import Owned, OwnedQuerySet
from .status import IN_FLIGHT


class WorkflowQuerySet(OwnedQuerySet):
    def end(self, now) -> int:
        """Marks these workflows ended when none of their steps is waiting, queued or running, once (as a batch's)."""
        return self.filter(ended_at__isnull=True).exclude(Exists(_in_flight())).update(ended_at=now)

    def reopen(self) -> int:
        """Marks these workflows in flight again where a step is (it was retried)."""
        return self.filter(ended_at__isnull=False).filter(Exists(_in_flight())).update(ended_at=None)


def _in_flight() -> models.QuerySet:
    from .computation import Computation

    return Computation.objects.filter(workflow=OuterRef("pk"), status__in=IN_FLIGHT)


class Workflow(Owned):
    """Steps that feed each other, submitted together. A step's inputs that take a result are empty until the steps
    it depends on have all succeeded."""

    name = models.CharField(_("name"), max_length=100, blank=True)
    size = models.PositiveSmallIntegerField(_("steps"))
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    # As a batch's: posting the same form twice makes one workflow.
    idempotency_key = models.UUIDField(_("idempotency key"), unique=True, null=True, blank=True, editable=False)
    # When a step's end found none of them in flight (WorkflowQuerySet.end); a retry empties it again.
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True, editable=False)

    objects = WorkflowQuerySet.as_manager()

    class Meta:
        verbose_name = _("workflow")
        verbose_name_plural = _("workflows")
        indexes = [models.Index(fields=["ended_at"], name="workflow_ended")]

    def __str__(self) -> str:
        title = self.name or ngettext("%(count)s step", "%(count)s steps", self.size) % {"count": self.size}
        return gettext("Workflow #%(id)s: %(title)s") % {"id": self.pk, "title": title}

    def get_absolute_url(self) -> str:
        return reverse("workflow-detail", args=[self.pk])


class WorkflowEdge(models.Model):
    """Step `target` takes the result of step `source` as its input `input` (at `position` of an input that takes
    several), or, with no input, waits for it. Steps by their numbers in the workflow: an edge outlives neither."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="edges")
    source = models.PositiveSmallIntegerField(_("from step"))
    target = models.PositiveSmallIntegerField(_("to step"))
    input = models.CharField(_("input"), max_length=32, blank=True)
    position = models.PositiveSmallIntegerField(_("position"), null=True, blank=True)

    class Meta:
        verbose_name = _("workflow edge")
        verbose_name_plural = _("workflow edges")

    def __str__(self) -> str:
        return f"{self.source} → {self.target}{f' ({self.input})' if self.input else ''}"
