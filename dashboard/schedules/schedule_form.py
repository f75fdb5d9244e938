"""The form for a schedule: an operation with its inputs, as the computation form takes them, and when to run it."""

from collections.abc import Mapping

from django import forms
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.utils import timezone
from django.utils.translation import gettext, ngettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from dashboard.computations.forms import ComputationForm
from dashboard.web.throttling import Refused
from tasks import scheduling, services
from tasks.models import Schedule, parse_cron


def check_when(form: forms.Form, cleaned: dict) -> None:
    """A schedule's time, by its kind (the Schedules form's and the admin's): errors added to `form`'s fields."""
    kind = cleaned.get("kind")
    if kind == Schedule.Kind.ONCE:
        run_at = cleaned.get("run_at")
        if run_at is None and "run_at" not in form.errors:
            form.add_error("run_at", gettext("Give the time to run it at."))
        elif run_at is not None and run_at <= timezone.now():
            form.add_error("run_at", gettext("This time has passed."))
    elif kind == Schedule.Kind.EVERY and cleaned.get("every") is None and "every" not in form.errors:
        form.add_error("every", gettext("Give how often to run it."))
    elif kind == Schedule.Kind.EVERY and not cleaned.get("unit"):
        form.add_error("unit", forms.Field.default_error_messages["required"])
    elif kind == Schedule.Kind.CRON:
        try:
            parse_cron(cleaned.get("cron") or "")
        except ValueError as error:
            form.add_error("cron", str(error))
    field = {Schedule.Kind.EVERY: "every", Schedule.Kind.CRON: "cron"}.get(kind)
    if field is None or form.errors.keys() & {field, "unit", "operation", "work_seconds"}:
        return
    when = Schedule(
        kind=kind, every=cleaned.get("every"), unit=cleaned.get("unit") or "", cron=cleaned.get("cron") or ""
    )
    least = scheduling.least_gap(cleaned.get("operation") or "", cleaned.get("work_seconds") or 0)
    if when.shortest_gap() < least:
        minutes = int(least.total_seconds() // 60)
        message = ngettext(
            "This computation may run at most once a minute.",
            "This computation may run at most once every %(minutes)d minutes.",
            minutes,
        ) % {"minutes": minutes}
        form.add_error(field, message)


class ScheduleForm(ComputationForm):
    """An operation with its inputs, and when to run it: once at a time, every N minutes or hours, or by a cron
    expression in TIME_ZONE."""

    name = forms.CharField(label=_("Name"), max_length=100)
    kind = forms.ChoiceField(
        label=pgettext_lazy("a schedule", "Runs"), choices=Schedule.Kind.choices, initial=Schedule.Kind.EVERY
    )
    run_at = forms.DateTimeField(
        label=_("Once at"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text=_("In your time zone."),
    )
    every = forms.IntegerField(label=_("Every"), min_value=1, max_value=10_000, required=False, initial=5)
    unit = forms.ChoiceField(label=_("Unit"), choices=Schedule.Unit.choices, initial=Schedule.Unit.MINUTES)
    cron = forms.CharField(
        label=_("Cron expression"),
        max_length=100,
        required=False,
        help_text=_("Minute, hour, day of month, month, day of week, e.g. 0 2 * * * for 02:00 every day."),
    )
    catch_up = forms.BooleanField(
        label=_("Run a missed run once when the scheduler is back (else skip it)"), required=False, initial=True
    )

    def __init__(
        self,
        data: Mapping[str, str] | None = None,
        *,
        operation: str | None = None,
        actor: services.Actor | None = None,
    ):
        super().__init__(data, operation=operation)
        self.actor = actor
        names = [spec.name for spec in self.spec.inputs] if self.spec else []
        self.order_fields(["name", "operation", *names, "work_seconds", "kind", "run_at", "every", "unit", "cron"])

    def clean(self) -> dict:
        cleaned = super().clean()
        check_when(self, cleaned)
        return cleaned

    def submit(self, owner: AbstractBaseUser | None, address: str | None) -> Schedule:
        """The valid form's schedule (tasks.scheduling.create), `owner`'s or made from `address`; Refused (422) past
        SCHEDULE_MAX of theirs or SCHEDULE_MAX_TOTAL in all."""
        data = self.cleaned_data
        try:
            return scheduling.create(
                name=data["name"],
                operation=self.spec,
                inputs=self.inputs,
                work_seconds=self.work,
                **scheduling.timing(data),
                owner=owner,
                address=address,
                actor=self.actor,
            )
        except scheduling.TooManySchedules as error:
            if error.in_all:
                message = gettext("There are as many schedules as the dashboard keeps: none can be added for now.")
            else:
                message = ngettext(
                    "You have %(count)d schedule already, the most one person may have: delete one first.",
                    "You have %(count)d schedules already, the most one person may have: delete one first.",
                    settings.SCHEDULE_MAX,
                ) % {"count": settings.SCHEDULE_MAX}
            raise Refused(message, status=422) from error
