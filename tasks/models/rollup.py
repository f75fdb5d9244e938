"""Rollups: how many computations ended, by operation, final status and owner, and how long they ran, per minute,
per hour and per day (UTC). They are kept after the computations themselves are pruned (tasks.rollups says for how
long), so the history outlives the rows, and the Activity panel reads them instead of scanning the table."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Rollup(models.Model):
    class Resolution(models.TextChoices):
        MINUTE = "minute", _("minute")
        HOUR = "hour", _("hour")
        DAY = "day", _("day")

    resolution = models.CharField(_("resolution"), max_length=8, choices=Resolution)
    period = models.DateTimeField(_("period"))  # its start, in UTC
    operation = models.CharField(_("operation"), max_length=32)
    status = models.CharField(_("status"), max_length=16)
    # The owner's id, 0 for none: an id rather than a foreign key, so the history outlives a deleted user, and never
    # NULL, which a unique index would let repeat.
    owner_key = models.PositiveBigIntegerField(_("owner"), default=0)
    count = models.PositiveIntegerField(_("computations"))
    # Those that ran (a computation cancelled while queued never did): their run time's sum and, per bucket of
    # tasks.counters.BUCKETS (and one past the last), how many ran that long at most.
    runs = models.PositiveIntegerField(_("runs"))
    run_seconds = models.FloatField(_("run time, seconds in all"))
    run_buckets = models.JSONField(_("run times by bucket"))

    class Meta:
        verbose_name = _("rollup")
        verbose_name_plural = _("rollups")
        constraints = [
            models.UniqueConstraint(
                fields=["resolution", "period", "operation", "status", "owner_key"], name="rollup_unique"
            )
        ]
        indexes = [models.Index(fields=["resolution", "period"], name="rollup_period")]

    def __str__(self) -> str:
        return f"{self.resolution} {self.period:%Y-%m-%d %H:%M} {self.operation} {self.status} ×{self.count}"


class RollupMark(models.Model):
    """How far the rollups reach, one row: history older than `minutes_from` (fixed at the first roll-up) is rolled
    into hours from the oldest on, and has been up to `backfilled_to`; from `minutes_from` on into minutes, up to
    `rolled_to`."""

    minutes_from = models.DateTimeField()
    backfilled_to = models.DateTimeField()
    rolled_to = models.DateTimeField()

    def __str__(self) -> str:
        return f"minutes from {self.minutes_from:%Y-%m-%d %H:%M}, hours to {self.backfilled_to:%Y-%m-%d %H:%M}"
