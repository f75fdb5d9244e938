"""/api/v1/schedules, /api/v1/workers and /api/v1/queues: what the Schedules and Workers pages do, for programs
(the same forms, services and controls; operators only where the pages are)."""

import enum
from datetime import datetime
from typing import Any, Literal

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.translation import gettext
from ninja import Field, Router, Schema, Status
from pydantic import StrictBool

from dashboard.api import gate, schemas
from dashboard.api.problems import Problem
from dashboard.operators import workers as workers_page
from dashboard.schedules.schedule_form import ScheduleForm
from dashboard.web import access, submitting, throttling
from tasks import control, presence, queues, scheduling
from tasks.models import AuditEntry, Schedule, ScheduleRun

router = Router()
QueueName = enum.StrEnum("QueueName", {name.upper(): name for name in queues.NAMES})
QueueAction = enum.StrEnum("QueueAction", {name.upper(): name for name in control.QUEUE_ACTIONS})
WorkerAction = enum.StrEnum("WorkerAction", {name.upper(): name for name in control.WORKER_ACTIONS})
ScheduleAction = Literal["pause", "resume", "run"]


class When(schemas.Work):
    name: str = Field(min_length=1, max_length=100)
    kind: Literal["once", "every", "cron"]
    run_at: datetime | None = Field(None, description="For `once`: when.")
    every: schemas.Whole | None = Field(None, ge=1, le=10_000, description="For `every`: how many units.")
    unit: Literal["minutes", "hours"] | None = None
    cron: str | None = Field(None, max_length=100, description="For `cron`: minute hour day month weekday.")
    catch_up: StrictBool = Field(True, description="Run a missed run once on recovery (else skip it).")


ScheduleIn = schemas.per_operation(When, "Schedule")


class RunOut(Schema):
    due_at: datetime
    fired_at: datetime
    manual: bool
    outcome: str
    reason: str | None
    computation: int | None


class ScheduleOut(Schema):
    id: int
    name: str
    operation: str
    inputs: dict[str, str | int]
    work_seconds: int
    kind: str
    run_at: datetime | None
    every: int | None
    unit: str | None
    cron: str | None
    time_zone: str
    catch_up: bool
    paused: bool
    state: str
    description: str
    next_run_at: datetime | None
    created_at: datetime
    url: str


class ScheduleDetail(ScheduleOut):
    runs: list[RunOut]


class ScheduleActed(ScheduleOut):
    changed: bool | None = None
    run: RunOut | None = None


class WorkerOut(Schema):
    name: str
    host: str
    state: str
    queues: list[str]
    consuming: list[str]
    concurrency: int
    busy: int
    processed: int
    running: list[int]
    started: datetime
    heartbeat: datetime
    versions: dict[str, str]


class QueueOut(Schema):
    name: str
    paused: bool
    depth: int
    oldest_sent_at: datetime | None
    oldest_age_seconds: float
    in_per_minute: float
    out_per_minute: float


class Workers(Schema):
    workers: list[WorkerOut]
    queues: list[QueueOut]


class QueueActed(Schema):
    queue: str
    paused: bool | None = None
    changed: bool | None = None
    cancelled: int | None = None
    messages: int | None = None


class WorkerActed(Schema):
    worker: str
    sent: str


@router.get("/schedules", response=list[ScheduleOut], tags=["schedules"], summary="List schedules")
def schedules(request: HttpRequest) -> list[dict]:
    return [schedule_out(each) for each in Schedule.objects.visible_to(access.owner_scope(request))[:200]]


@router.post("/schedules", response={201: ScheduleOut}, tags=["schedules"], summary="Create a schedule")
def create_schedule(request: HttpRequest, payload: ScheduleIn, response: HttpResponse) -> Status:
    data = {
        **{key: str(value) for key, value in payload.dict().items() if value is not None and key != "inputs"},
        **{name: str(value) for name, value in payload.inputs.model_dump().items()},
    }
    data.pop("catch_up")
    if payload.catch_up:
        data["catch_up"] = "on"
    if payload.run_at:
        data["run_at"] = payload.run_at.isoformat()
    form = ScheduleForm(data, actor=access.actor(request, AuditEntry.Source.API))
    schedule = gate.submitted(request, form, {"operation": "#/operation", "name": "#/name", "kind": "#/kind"})
    response["Location"] = reverse("api-v1:schedule", args=[schedule.pk])
    return Status(201, schedule_out(schedule))


@router.get("/schedules/{int:pk}", response=ScheduleDetail, url_name="schedule", tags=["schedules"], summary="Read one")
def schedule(request: HttpRequest, pk: int) -> dict:
    found = _schedule(request, pk)
    return {**schedule_out(found), "runs": [run_out(run) for run in found.runs.all()[:50]]}


@router.post("/schedules/{int:pk}/{action}", response=ScheduleActed, tags=["schedules"], summary="Pause, resume, run")
def schedule_action(request: HttpRequest, pk: int, action: ScheduleAction) -> dict:
    found = _schedule(request, pk, acting=True)
    done = _on_schedule(request, found, action)
    found.refresh_from_db()
    if isinstance(done, ScheduleRun):
        return {**schedule_out(found), "run": run_out(done)}
    return {**schedule_out(found), "changed": bool(done)}


@router.delete("/schedules/{int:pk}", response={204: None}, tags=["schedules"], summary="Delete one")
def delete_schedule(request: HttpRequest, pk: int) -> Status:
    _on_schedule(request, _schedule(request, pk, acting=True), "delete")
    return Status(204, None)


@router.get("/workers", response=Workers, tags=["operators"], summary="Workers and queues (operators)")
def workers(request: HttpRequest, response: HttpResponse) -> dict:
    _operators_only(access.may_oversee(request.user))
    data = workers_page.snapshot(request)
    if not data["reachable"]:
        raise Problem(503, "unavailable", gettext("The broker cannot be reached: no figures."))
    return {
        "workers": [
            {**vars(worker), "state": state, "running": [item.pk for item in running]}
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
    }


@router.post("/queues/{name}/{action}", response=QueueActed, tags=["operators"], summary="Pause, resume, purge")
def queue_action(request: HttpRequest, name: QueueName, action: QueueAction) -> dict:
    _operators_only(access.may_operate(request.user))
    done = control.on_queue(name, action, access.actor(request, AuditEntry.Source.API))
    if action == "purge":
        return {"queue": name, "cancelled": done.cancelled, "messages": done.messages}
    return {"queue": name, "paused": action == "pause", "changed": done.changed}


@router.post(
    "/workers/{name}/{action}", response={202: WorkerActed}, tags=["operators"], summary="Grow, shrink, shut down"
)
def worker_action(request: HttpRequest, name: str, action: WorkerAction) -> Status:
    _operators_only(access.may_operate(request.user))
    worker = presence.find(name)
    if worker is None:
        raise Problem(404, "not-found", gettext("No worker has this name."))
    try:
        control.WORKER_ACTIONS[action](worker, access.actor(request, AuditEntry.Source.API))
    except control.Refused as refused:
        raise Problem(409, "conflict", str(refused)) from refused
    return Status(202, {"worker": name, "sent": action})


def _operators_only(allowed: bool) -> None:
    if not allowed:
        raise Problem(403, "operators-only")


def _schedule(request: HttpRequest, pk: int, *, acting: bool = False) -> Schedule:
    found = Schedule.objects.visible_to(access.owner_scope(request)).filter(pk=pk).first()
    if found is None:
        raise Problem(404, "not-found", gettext("No schedule has this id."))
    if acting and not access.may_act_on(request, found.owner_id):
        raise Problem(403, "forbidden", gettext("You may see this, not change it: it is someone else's."))
    return found


def _on_schedule(request: HttpRequest, found: Schedule, action: str) -> Any:
    try:
        return submitting.on_schedule(request, found, action, access.actor(request, AuditEntry.Source.API))
    except throttling.Refused as refused:
        raise gate.refusal(refused) from refused


def schedule_out(schedule: Schedule) -> dict:
    return {
        "id": schedule.pk,
        "name": schedule.name,
        "operation": schedule.operation,
        "inputs": schedule.inputs,
        "work_seconds": schedule.work_seconds,
        "kind": schedule.kind,
        "run_at": schedule.run_at,
        "every": schedule.every,
        "unit": schedule.unit or None,
        "cron": schedule.cron or None,
        "time_zone": settings.TIME_ZONE,
        "catch_up": schedule.catch_up,
        "paused": schedule.paused,
        "state": schedule.state,
        "description": schedule.description,
        "next_run_at": schedule.next_run_at,
        "created_at": schedule.created_at,
        "url": schedule.get_absolute_url(),
    }


def run_out(run: ScheduleRun) -> dict:
    return {
        "due_at": run.due_at,
        "fired_at": run.fired_at,
        "manual": run.manual,
        "outcome": run.outcome,
        "reason": scheduling.reason_text(run) or None,
        "computation": run.computation_id,
    }
