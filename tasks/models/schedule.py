"""Schedules: an operation with its inputs, run once at a time, every N minutes or hours, or by a cron expression in
TIME_ZONE; and their runs, each linked to the computation it created (tasks.scheduling fires them)."""

import datetime
import itertools
import math

from celery.schedules import crontab
from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from .computation import Computation, OfAnOperation
from .owned import Owned

# How many of a cron schedule's next runs tell its tightest spacing (a week of hourly runs, more than a day of any
# finer ones).
CRON_SAMPLE = 200


class Schedule(OfAnOperation, Owned):
    class Kind(models.TextChoices):
        ONCE = "once", _("Once at")
        EVERY = "every", _("Every")
        CRON = "cron", _("Cron expression")

    class Unit(models.TextChoices):
        MINUTES = "minutes", _("minutes")
        HOURS = "hours", _("hours")

    name = models.CharField(_("name"), max_length=100)
    operation = models.CharField(_("operation"), max_length=64)
    inputs = models.JSONField(_("inputs"))
    work_seconds = models.PositiveSmallIntegerField(_("simulated work (seconds)"), default=0)
    kind = models.CharField(_("when"), max_length=8, choices=Kind)
    run_at = models.DateTimeField(_("run at"), null=True, blank=True)  # once
    every = models.PositiveIntegerField(_("every"), null=True, blank=True)  # every N units, counted from `created_at`
    unit = models.CharField(_("unit"), max_length=8, choices=Unit, blank=True)
    cron = models.CharField(_("cron expression"), max_length=100, blank=True)  # minute hour day month weekday
    # A run missed while nothing could fire it (beat, the broker or the database down): run once on recovery, or skip
    # it. Never once per missed period.
    catch_up = models.BooleanField(_("run a missed run once on recovery"), default=True)
    paused = models.BooleanField(_("paused"), default=False)
    # The due time the next run is for; None once a "once" schedule has run. Fired when it has passed.
    next_run_at = models.DateTimeField(_("next run"), null=True, blank=True)
    # The client address that made it, when no one was signed in: the cap on schedules counts per person or address,
    # and its runs count as that address's submissions.
    created_from = models.GenericIPAddressField(_("created from"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("schedule")
        verbose_name_plural = _("schedules")
        ordering = ["-pk"]
        indexes = [models.Index(fields=["paused", "next_run_at"], name="schedule_due")]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("schedule-detail", args=[self.pk])

    @property
    def period(self) -> datetime.timedelta:
        minutes = self.every * (60 if self.unit == self.Unit.HOURS else 1)
        return datetime.timedelta(minutes=minutes)

    def crontab(self) -> crontab:
        return parse_cron(self.cron)

    def next_after(self, moment: datetime.datetime) -> datetime.datetime | None:
        """The first due time strictly after `moment`; None for a "once" schedule whose time has passed."""
        if self.kind == self.Kind.ONCE:
            return self.run_at if self.run_at > moment else None
        if self.kind == self.Kind.EVERY:
            # Counted from the schedule's creation, to the minute: due times do not drift with the firing's delay.
            anchor = self.created_at.replace(second=0, microsecond=0)
            periods = max(0, math.floor((moment - anchor) / self.period) + 1)
            return anchor + periods * self.period
        return cron_next(self.crontab(), moment)

    def shortest_gap(self) -> datetime.timedelta | None:
        """The least time between two of its runs, None for a "once" schedule: an "every" schedule's period, a cron
        expression's tightest spacing over its next CRON_SAMPLE runs."""
        if self.kind == self.Kind.ONCE:
            return None
        if self.kind == self.Kind.EVERY:
            return self.period
        parsed, moments = self.crontab(), [timezone.now()]
        for _step in range(CRON_SAMPLE):
            moments.append(cron_next(parsed, moments[-1]))
        return min(later - earlier for earlier, later in itertools.pairwise(moments[1:]))

    @property
    def description(self) -> str:
        """When it runs, as a person reads it."""
        if self.kind == self.Kind.ONCE:
            local = timezone.localtime(self.run_at)
            return gettext("once, at %(time)s") % {"time": local.strftime("%Y-%m-%d %H:%M")}
        if self.kind == self.Kind.EVERY:
            if self.unit == self.Unit.HOURS:
                return ngettext("every hour", "every %(count)s hours", self.every) % {"count": self.every}
            return ngettext("every minute", "every %(count)s minutes", self.every) % {"count": self.every}
        return gettext("cron %(expression)s (%(zone)s)") % {"expression": self.cron, "zone": settings.TIME_ZONE}

    @property
    def state(self) -> str:
        if self.next_run_at is None:
            return "done"
        return "paused" if self.paused else "active"


def parse_cron(expression: str) -> crontab:
    """Celery's own crontab, in TIME_ZONE (CELERY_TIMEZONE): "minute hour day-of-month month day-of-week".
    ValueError for anything else."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(gettext("A cron expression has five fields: minute, hour, day of month, month, day of week."))
    try:
        parsed = crontab.from_string(" ".join(fields))
        # Parsing is lazy in parts: asking for the next time checks every field.
        cron_next(parsed, timezone.now())
    except Exception as error:  # crontab raises ValueError, ParseException or IndexError by field
        raise ValueError(gettext("Not a cron expression: %(reason)s") % {"reason": error}) from error
    return parsed


def cron_next(parsed: crontab, moment: datetime.datetime) -> datetime.datetime:
    """The first time `parsed` matches strictly after `moment`, as Celery's beat computes it."""
    start, delta, _ = parsed.remaining_delta(moment.replace(second=0, microsecond=0), tz=settings.TIME_ZONE)
    return (start + delta).astimezone(datetime.UTC)


class ScheduleRun(models.Model):
    """One due time of a schedule, fired once: unique per schedule and due time, so that a second beat, or a task
    delivered twice, finds it taken."""

    class Outcome(models.TextChoices):
        SUBMITTED = "submitted", _("Submitted")
        SKIPPED = "skipped", _("Skipped: missed")
        REFUSED = "refused", _("Refused")

    schedule = models.ForeignKey(Schedule, verbose_name=_("schedule"), on_delete=models.CASCADE, related_name="runs")
    due_at = models.DateTimeField(_("due"))
    fired_at = models.DateTimeField(_("fired"), default=timezone.now)
    manual = models.BooleanField(_("run now"), default=False)
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    # Kept after retention prunes the computation (no foreign key constraint), as the audit trail keeps its ids.
    computation = models.ForeignKey(
        Computation,
        verbose_name=_("computation"),
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )

    class Meta:
        verbose_name = _("schedule run")
        verbose_name_plural = _("schedule runs")
        ordering = ["-fired_at", "-pk"]
        constraints = [
            # A run now's due time is its moment (to the microsecond), so it never takes a due time's place.
            models.UniqueConstraint(fields=["schedule", "due_at"], name="schedule_run_once_per_due_time")
        ]
        indexes = [models.Index(fields=["fired_at"], name="schedule_run_fired")]

    def __str__(self) -> str:
        return f"{self.schedule_id} {self.due_at:%Y-%m-%d %H:%M} {self.outcome}"

    @property
    def late(self) -> datetime.timedelta:
        return self.fired_at - self.due_at
