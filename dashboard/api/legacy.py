"""The JSON API: one computation, and its cancel and retry; the workers and queues, and their controls; the
schedules, their creation and actions (the same services and controls as the pages; CSRF as everywhere, so a
script sends the csrftoken cookie back in an X-CSRFToken header)."""

from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from dashboard.operators import workers
from dashboard.schedules.schedule_form import ScheduleForm
from dashboard.web import access, submitting, throttling
from tasks import control, presence, queues, scheduling, services
from tasks.models import AuditEntry, Computation, Schedule, ScheduleRun


@access.json_api
@require_safe
def computation_json(request: HttpRequest, pk: int) -> JsonResponse:
    computation = Computation.objects.visible_to(access.owner_scope(request)).filter(pk=pk).first()
    if computation is None:
        return _not_found()
    return JsonResponse(as_json(computation))


@access.json_api
@require_POST
def cancel_json(request: HttpRequest, pk: int) -> JsonResponse:
    return _act(
        request, pk, AuditEntry.Action.CANCEL, gettext("Only a queued or running computation can be cancelled.")
    )


@access.json_api
@require_POST
def retry_json(request: HttpRequest, pk: int) -> JsonResponse:
    return _act(request, pk, AuditEntry.Action.RETRY, gettext("Only a failed or cancelled computation can be retried."))


def _act(request: HttpRequest, pk: int, action: str, refusal: str) -> JsonResponse:
    computation = Computation.objects.visible_to(access.owner_scope(request)).only("owner").filter(pk=pk).first()
    if computation is None:
        return _not_found()
    if not access.may_act_on(request, computation.owner_id):
        return _read_only()
    selection = services.Selection(ids=[pk], owner=access.owner_scope(request, acting=True))
    try:
        actor = access.actor(request, AuditEntry.Source.API)
        outcome = submitting.act(request, action, selection=selection, actor=actor)
    except throttling.Refused as refused:
        return refused.advise(JsonResponse({"error": refused.message}, status=refused.status))
    computation = Computation.objects.get(pk=pk)
    if not outcome.changed:
        return JsonResponse({"error": refusal, "computation": as_json(computation)}, status=409)
    return JsonResponse(as_json(computation))


def _read_only() -> JsonResponse:
    return JsonResponse({"error": gettext("You may see this, not change it: it is someone else's.")}, status=403)


def _not_found() -> JsonResponse:
    return JsonResponse({"error": gettext("No computation has this id.")}, status=404)


def as_json(computation: Computation) -> dict[str, Any]:
    return {
        "id": computation.pk,
        "operation": computation.operation,
        "inputs": computation.inputs,
        "work_seconds": computation.work_seconds,
        "status": computation.status,
        "progress": computation.progress,
        "result": computation.result or None,
        "error": computation.error or None,
        "attempts": computation.attempts,
        "worker": computation.worker or None,
        "earlier_attempts": computation.attempts_before,
        "task_id": str(computation.task_id),
        "created_at": computation.created_at,
        "started_at": computation.started_at,
        "finished_at": computation.finished_at,
        "updated_at": computation.updated_at,
        "url": computation.get_absolute_url(),
    }


@access.json_api
@require_safe
@access.overseers_only
def workers_json(request: HttpRequest) -> JsonResponse:
    data = workers.snapshot(request)
    return JsonResponse(
        {
            "workers": [
                {
                    "name": worker.name,
                    "host": worker.host,
                    "state": state,
                    "queues": worker.queues,
                    "consuming": worker.consuming,
                    "concurrency": worker.concurrency,
                    "busy": worker.busy,
                    "processed": worker.processed,
                    "running": [item.pk for item in running],
                    "started": worker.started,
                    "heartbeat": worker.heartbeat,
                    "versions": worker.versions,
                }
                for worker, state, running in data["workers"]
            ],
            "queues": [
                {
                    "name": figures.name,
                    "paused": figures.paused,
                    "depth": figures.depth,
                    "oldest_sent_at": figures.oldest_sent_at,
                    "oldest_age_seconds": round(figures.oldest_age(data["now"]), 3),
                    "in_per_minute": figures.rate_in,
                    "out_per_minute": figures.rate_out,
                }
                for figures in data["queues"]
            ],
        },
        status=200 if data["reachable"] else 503,
    )


@access.json_api
@require_POST
@access.operators_only
def queue_json(request: HttpRequest, name: str, action: str) -> JsonResponse:
    if name not in queues.NAMES:
        return JsonResponse({"error": gettext("No queue has this name.")}, status=404)
    if action not in control.QUEUE_ACTIONS:
        return _no_such_action()
    done = control.on_queue(name, action, access.actor(request, AuditEntry.Source.API))
    if action == "purge":
        return JsonResponse({"queue": name, "cancelled": done.cancelled, "messages": done.messages})
    return JsonResponse({"queue": name, "paused": action == "pause", "changed": done.changed})


@access.json_api
@require_POST
@access.operators_only
def worker_json(request: HttpRequest, name: str, action: str) -> JsonResponse:
    if action not in control.WORKER_ACTIONS:
        return _no_such_action()
    worker = presence.find(name)
    if worker is None:
        return JsonResponse({"error": gettext("No worker has this name.")}, status=404)
    try:
        control.WORKER_ACTIONS[action](worker, access.actor(request, AuditEntry.Source.API))
    except control.Refused as refused:
        return JsonResponse({"error": str(refused)}, status=409)
    return JsonResponse({"worker": name, "sent": action}, status=202)


def _no_such_action() -> JsonResponse:
    return JsonResponse({"error": gettext("No such action.")}, status=404)


@access.json_api
@require_http_methods(["GET", "HEAD", "POST"])
def schedules_json(request: HttpRequest) -> JsonResponse:
    """The schedules this request sees; a POST (the Schedules form's fields) creates one: 201, or 422 with the
    messages by field."""
    if request.method == "POST":
        form = ScheduleForm(request.POST, actor=access.actor(request, AuditEntry.Source.API))
        try:
            schedule = submitting.submission(request, form, owner=access.owner_of_new(request))
        except throttling.Refused as refused:
            errors = {field or "__all__": [str(error) for error in errors] for field, errors in form.errors.items()}
            body = {"error": refused.message or gettext("The schedule is not valid."), "errors": errors}
            return refused.advise(JsonResponse(body, status=refused.status))
        return JsonResponse(schedule_as_json(schedule), status=201)
    listed = Schedule.objects.visible_to(access.owner_scope(request))[:200]
    return JsonResponse({"schedules": [schedule_as_json(schedule) for schedule in listed]})


@access.json_api
@require_safe
def schedule_json(request: HttpRequest, pk: int) -> JsonResponse:
    schedule = Schedule.objects.visible_to(access.owner_scope(request)).filter(pk=pk).first()
    if schedule is None:
        return _no_schedule()
    runs = [run_as_json(run) for run in schedule.runs.all()[:50]]
    return JsonResponse({**schedule_as_json(schedule), "runs": runs})


@access.json_api
@require_POST
def schedule_action_json(request: HttpRequest, pk: int, action: str) -> JsonResponse:
    if action not in scheduling.ACTIONS:
        return _no_such_action()
    schedule = Schedule.objects.visible_to(access.owner_scope(request)).filter(pk=pk).first()
    if schedule is None:
        return _no_schedule()
    if not access.may_act_on(request, schedule.owner_id):
        return _read_only()
    try:
        done = submitting.on_schedule(request, schedule, action, access.actor(request, AuditEntry.Source.API))
    except throttling.Refused as refused:
        return refused.advise(JsonResponse({"error": refused.message}, status=refused.status))
    if action == "delete":
        return JsonResponse({"deleted": pk})
    schedule.refresh_from_db()
    body = schedule_as_json(schedule)
    if isinstance(done, ScheduleRun):
        body["run"] = run_as_json(done)
    else:
        body["changed"] = done
    return JsonResponse(body)


def schedule_as_json(schedule: Schedule) -> dict[str, Any]:
    return {
        "id": schedule.pk,
        "name": schedule.name,
        "operation": schedule.operation,
        "inputs": schedule.inputs,
        "work_seconds": schedule.work_seconds,
        "kind": schedule.kind,
        "run_at": schedule.run_at.isoformat() if schedule.run_at else None,
        "every": schedule.every,
        "unit": schedule.unit or None,
        "cron": schedule.cron or None,
        "time_zone": settings.TIME_ZONE,
        "catch_up": schedule.catch_up,
        "paused": schedule.paused,
        "state": schedule.state,
        "description": schedule.description,
        "next_run_at": schedule.next_run_at.isoformat() if schedule.next_run_at else None,
        "created_at": schedule.created_at.isoformat(),
        "url": schedule.get_absolute_url(),
    }


def run_as_json(run: ScheduleRun) -> dict[str, Any]:
    return {
        "due_at": run.due_at.isoformat(),
        "fired_at": run.fired_at.isoformat(),
        "manual": run.manual,
        "outcome": run.outcome,
        "reason": scheduling.reason_text(run) or None,
        "computation": run.computation_id,
    }


def _no_schedule() -> JsonResponse:
    return JsonResponse({"error": gettext("No schedule has this id.")}, status=404)
