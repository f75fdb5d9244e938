"""/api/v1/workers and /api/v1/queues: what the Workers page shows and does, for operators only, as there (the same
snapshot and controls)."""

import enum
from datetime import datetime

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext
from ninja import Router, Schema, Status

from dashboard.api.problems import Problem
from dashboard.operators import workers as workers_page
from dashboard.web import access
from tasks import control, presence, queues
from tasks.models import AuditEntry

router = Router(tags=["operators"])
QueueName = enum.StrEnum("QueueName", {name.upper(): name for name in queues.NAMES})
QueueAction = enum.StrEnum("QueueAction", {name.upper(): name for name in control.QUEUE_ACTIONS})
WorkerAction = enum.StrEnum("WorkerAction", {name.upper(): name for name in control.WORKER_ACTIONS})


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


@router.get("/workers", response=Workers, summary="Workers and queues (operators)")
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


@router.post("/queues/{name}/{action}", response=QueueActed, summary="Pause, resume, purge")
def queue_action(request: HttpRequest, name: QueueName, action: QueueAction) -> dict:
    _operators_only(access.may_operate(request.user))
    done = control.on_queue(name, action, access.actor(request, AuditEntry.Source.API))
    if action == "purge":
        return {"queue": name, "cancelled": done.cancelled, "messages": done.messages}
    return {"queue": name, "paused": action == "pause", "changed": done.changed}


@router.post("/workers/{name}/{action}", response={202: WorkerActed}, summary="Grow, shrink, shut down")
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
