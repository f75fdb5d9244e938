"""The statuses a computation goes through, and how many computations are in each."""

from collections.abc import Mapping
from dataclasses import dataclass

from django.db import models
from django.utils.translation import gettext_lazy as _


class Status(models.TextChoices):
    # A workflow's step before the steps it takes results from (or waits for) have all succeeded.
    WAITING = "waiting", _("Waiting")
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")
    # A workflow's step that will not run: a step it depends on failed or was cancelled (a retry of that one undoes it).
    NOT_RUN = "not_run", _("Not run")


# A waiting step is in flight: it ends on its own (run, or not run), and cancelling it is what stops it.
IN_FLIGHT = (Status.WAITING, Status.QUEUED, Status.RUNNING)
ENDED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.NOT_RUN)
RETRYABLE = (Status.FAILED, Status.CANCELLED)
# Counts shown per status stop at this (a page reads at most this many index entries per status).
COUNT_CAP = 10_000


@dataclass(frozen=True)
class StatusCounts:
    """How many computations are in each status. `counts["failed"]` (or `counts.failed` in a template) is one
    status's; the properties are the sums pages show."""

    by_status: Mapping[str, int]

    def __getitem__(self, status: str) -> int:
        # Only a status is a key: templates try `counts[name]` before `counts.name`, so `counts.ended` must miss here.
        if status not in Status.values:
            raise KeyError(status)
        return self.by_status.get(status, 0)

    @property
    def summary(self) -> list[tuple[str, str, int]]:
        """(value, label, count) for every status, in the order of their lives."""
        return [(status.value, status.label, self[status]) for status in Status]

    @property
    def in_flight(self) -> int:
        return sum(self[status] for status in IN_FLIGHT)

    @property
    def ended(self) -> int:
        return sum(self[status] for status in ENDED)

    @property
    def retryable(self) -> int:
        return sum(self[status] for status in RETRYABLE)
