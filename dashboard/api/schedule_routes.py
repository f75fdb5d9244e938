"""/api/v1/schedules: what the Schedules page does, for programs (the same form, services and ownership)."""

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
from dashboard.schedules.schedule_form import ScheduleForm
from dashboard.web import access, submitting, throttling
from tasks import scheduling
from tasks.models import AuditEntry, Schedule, ScheduleRun

router = Router(tags=["schedules"])
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


@router.get("/schedules", response=list[ScheduleOut], summary="List schedules")
def schedules(request: HttpRequest) -> list[dict]:
    return [schedule_out(each) for each in Schedule.objects.visible_to(access.owner_scope(request))[:200]]


@router.post("/schedules", response={201: ScheduleOut}, summary="Create a schedule")
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


@router.get("/schedules/{int:pk}", response=ScheduleDetail, url_name="schedule", summary="Read one")
def schedule(request: HttpRequest, pk: int) -> dict:
    found = _schedule(request, pk)
    return {**schedule_out(found), "runs": [run_out(run) for run in found.runs.all()[:50]]}


@router.post("/schedules/{int:pk}/{action}", response=ScheduleActed, summary="Pause, resume, run")
def schedule_action(request: HttpRequest, pk: int, action: ScheduleAction) -> dict:
    found = _schedule(request, pk, acting=True)
    done = _on_schedule(request, found, action)
    found.refresh_from_db()
    if isinstance(done, ScheduleRun):
        return {**schedule_out(found), "run": run_out(done)}
    return {**schedule_out(found), "changed": bool(done)}


@router.delete("/schedules/{int:pk}", response={204: None}, summary="Delete one")
def delete_schedule(request: HttpRequest, pk: int) -> Status:
    _on_schedule(request, _schedule(request, pk, acting=True), "delete")
    return Status(204, None)


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
