"""The Schedules page: a person's schedules (everyone's for staff, or with accounts off), the form for a new one, and
each schedule's page with its runs, linked to the computations they created. The actions go through
tasks.scheduling, as the admin's and the API's do."""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_htmx.http import HttpResponseClientRedirect

from dashboard.schedules.schedule_form import ScheduleForm
from dashboard.web import access, live, submitting, throttling
from dashboard.web.jinja import rendered
from dashboard.web.redirects import see_other
from tasks import scheduling
from tasks.models import AuditEntry, Computation, Schedule, ScheduleRun

PAGE, DETAIL, FORM = "dashboard/schedules.html", "dashboard/schedule.html", "dashboard/schedule_form_fields.jinja"
RUNS_PER_PAGE = 50


@require_http_methods(["GET", "HEAD", "POST"])
def schedules_page(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _create(request)
    form = ScheduleForm(operation=request.GET.get("operation"))
    if live.wants_partial(request):  # the operation picker asks for the form of another operation
        return render(request, FORM, {"form": form})
    return _page(request, form)


def _create(request: HttpRequest) -> HttpResponse:
    form = ScheduleForm(request.POST, actor=access.actor(request))

    def accepted(schedule: Schedule) -> HttpResponse:
        messages.success(request, gettext("Schedule “%(name)s” created.") % {"name": schedule.name})
        url = schedule.get_absolute_url()
        return HttpResponseClientRedirect(url) if request.htmx else see_other(url)

    def refused(status: int) -> HttpResponse:
        if request.htmx:
            return render(request, FORM, {"form": form}, status=status)
        return _page(request, form, status=status)

    return submitting.submit(request, form, accepted=accepted, refused=refused)


def _page(request: HttpRequest, form: ScheduleForm, *, status: int = 200) -> HttpResponse:
    listed = Schedule.objects.visible_to(access.owner_scope(request)).select_related("owner")
    context = {
        "form_html": rendered(FORM, {"form": form}, request),
        "schedules": listed[:200],
        "time_zone": settings.TIME_ZONE,
    }
    return render(request, PAGE, context, status=status)


@require_safe
def schedule_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail(request, get_object_or_404(Schedule.objects.visible_to(access.owner_scope(request)), pk=pk))


def _detail(request: HttpRequest, schedule: Schedule, *, status: int = 200) -> HttpResponse:
    runs = Paginator(schedule.runs.all(), RUNS_PER_PAGE).get_page(request.GET.get("page"))
    kept = set(
        Computation.objects.filter(pk__in=[run.computation_id for run in runs if run.computation_id]).values_list(
            "pk", flat=True
        )
    )
    rows = [(run, run.computation_id in kept, scheduling.reason_text(run)) for run in runs]
    return render(request, DETAIL, {"schedule": schedule, "runs": runs, "rows": rows}, status=status)


@require_POST
def schedule_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    if action not in scheduling.ACTIONS:
        raise Http404
    schedule = get_object_or_404(Schedule.objects.visible_to(access.owner_scope(request)), pk=pk)
    if not access.may_act_on(request, schedule.owner_id):
        raise PermissionDenied
    try:
        done = submitting.on_schedule(request, schedule, action, access.actor(request, AuditEntry.Source.DASHBOARD))
    except throttling.Refused as refused:
        messages.error(request, refused.message)
        return refused.advise(_detail(request, schedule, status=refused.status))
    if action == "delete":
        messages.success(request, gettext("Schedule “%(name)s” deleted.") % {"name": schedule.name})
        return see_other(reverse("schedules"))
    if isinstance(done, ScheduleRun):
        if done.outcome == ScheduleRun.Outcome.SUBMITTED:
            messages.success(request, gettext("Computation #%(id)s submitted.") % {"id": done.computation_id})
        else:
            messages.error(request, gettext("Not run: %(reason)s") % {"reason": scheduling.reason_text(done)})
    return see_other(schedule.get_absolute_url())
