"""/api/v1/workflows: submit a workflow as JSON (its steps, each input a value or another step's result), list them,
read one with its steps and edges, cancel or retry one whole.

A workflow is checked whole by tasks.workflows.plan, the builder page's check: a 422 names each step and input at
fault. It goes through dashboard.web.submitting as any submission: every step counts against the client's limit and
the queue's cap."""

import uuid
from collections import Counter
from collections.abc import Mapping
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.translation import gettext
from ninja import Field as NinjaField
from ninja import Query, Router, Schema, Status

from dashboard.api import gate, schemas
from dashboard.api.computations import IdempotencyKey, client_idempotency_key, computation_out
from dashboard.api.problems import Problem
from dashboard.web import access
from tasks import services
from tasks.models import AuditEntry, Computation, StatusCounts, Workflow, merged_page, translate_error
from tasks.operations import REGISTRY
from tasks.workflows import plan, recording
from tasks.workflows.plan import StepProblem

router = Router(tags=["workflows"])


class Submission:
    """A workflow's JSON as dashboard.web.submitting takes a form: checked whole, its problems by their pointers."""

    def __init__(self, payload: schemas.WorkflowIn, key: uuid.UUID | None, actor: services.Actor):
        self.payload, self.key, self.actor = payload, key, actor
        self.errors: dict[str, list[str]] = {}
        self.planned: plan.Plan | None = None

    @property
    def size(self) -> int:
        return len(self.payload.steps)

    def is_valid(self) -> bool:
        steps = [
            {
                "operation": str(step.operation),
                "inputs": {name: _given(value) for name, value in step.inputs.items()},
                "after": step.after,
                "work_seconds": step.work_seconds,
            }
            for step in self.payload.steps
        ]
        try:
            self.planned = plan.plan(steps, name=self.payload.name)
        except plan.PlanError as error:
            for problem in error.problems:
                self.add_error(_pointer(problem), _detail(problem, steps))
        return not self.errors

    def add_error(self, field: str | None, error: str) -> None:
        self.errors.setdefault(field or "__all__", []).append(error)

    def submit(self, owner: object, address: str | None) -> Workflow:
        assert self.planned is not None
        return recording.submit(self.planned, idempotency_key=self.key, owner=owner, address=address, actor=self.actor)


def _given(value: object) -> object:
    if isinstance(value, list):
        return [_given(each) for each in value]
    return {"step": value.step} if isinstance(value, schemas.ResultOf) else value


def _pointer(problem: StepProblem) -> str:
    if problem.step is None:
        return "#/steps"
    where = f"#/steps/{problem.step - 1}"
    if problem.input in (None, "inputs"):
        return where if problem.input is None else f"{where}/inputs"
    if problem.input in ("operation", "after", "work_seconds"):
        return f"{where}/{problem.input}"
    return f"{where}/inputs/{problem.input}"


def _detail(problem: StepProblem, steps: list[dict]) -> str:
    operation = REGISTRY.get(steps[problem.step - 1]["operation"]) if problem.step else None
    message = translate_error(problem.error.message, problem.error.params, operation.inputs if operation else ())
    return (
        gettext("Step %(step)s: %(message)s") % {"step": problem.step, "message": message} if problem.step else message
    )


@router.post("/workflows", response={201: schemas.WorkflowOut}, summary="Submit a workflow")
def submit(
    request: HttpRequest,
    payload: schemas.WorkflowIn,
    response: HttpResponse,
    idempotency_key: str | None = IdempotencyKey,
) -> Status:
    key = client_idempotency_key(request, idempotency_key) if idempotency_key else None
    submission = Submission(payload, key, access.actor(request, AuditEntry.Source.API))
    workflow = gate.submitted(request, submission, {})
    response["Location"] = reverse("api-v1:workflow", args=[workflow.pk])
    return Status(201, workflow_out(workflow))


class ListQuery(Schema):
    before: schemas.Id | None = NinjaField(None, description="The cursor: workflows older than this id (see `next`).")
    limit: int = NinjaField(25, ge=1, le=100)


@router.get("/workflows", response=schemas.WorkflowList, url_name="workflows", summary="List workflows, newest first")
def workflows(request: HttpRequest, query: Query[ListQuery]) -> dict:
    rows = Workflow.objects.visible_to(access.owner_scope(request))
    page = merged_page([rows], before=query.before, size=query.limit)
    counts = Computation.objects.filter(workflow__in=[row.pk for row in page.rows]).status_counts_by("workflow")
    next_url = None
    if page.older_before is not None:
        next_url = f"{reverse('api-v1:workflows')}?{urlencode({'before': page.older_before, 'limit': query.limit})}"
    items = [_summary(row, counts.get(row.pk, StatusCounts({})).by_status) for row in page.rows]
    return {"items": items, "next": next_url}


@router.get(
    "/workflows/{int:pk}", response=schemas.WorkflowOut, url_name="workflow", summary="Read one, with its steps"
)
def workflow(request: HttpRequest, pk: int) -> dict:
    return workflow_out(_visible(request, pk))


@router.post(
    "/workflows/{int:pk}/cancel", response=schemas.BulkOut, summary="Cancel its waiting, queued and running steps"
)
def cancel(request: HttpRequest, pk: int) -> dict:
    return _act(request, pk, AuditEntry.Action.CANCEL)


@router.post(
    "/workflows/{int:pk}/retry",
    response=schemas.BulkOut,
    summary="Retry its failed and cancelled steps (those not run wait for them again)",
)
def retry(request: HttpRequest, pk: int) -> dict:
    return _act(request, pk, AuditEntry.Action.RETRY)


def _visible(request: HttpRequest, pk: int) -> Workflow:
    found = Workflow.objects.visible_to(access.owner_scope(request)).filter(pk=pk).first()
    if found is None:
        raise Problem(404, "not-found", gettext("No workflow has this id."))
    return found


def _act(request: HttpRequest, pk: int, action: str) -> dict:
    found = _visible(request, pk)
    if not access.may_act_on(request, found.owner_id):
        raise Problem(403, "forbidden", gettext("You may see this, not change it: it is someone else's."))
    selection = services.Selection(filters={"workflow": pk}, owner=access.owner_scope(request, acting=True))
    outcome = gate.act(request, action, selection)
    return {"requested": outcome.requested, "changed": outcome.changed, "capped": outcome.capped}


def _summary(workflow: Workflow, counts: Mapping[str, int]) -> dict:
    return {
        "id": workflow.pk,
        "name": workflow.name,
        "size": workflow.size,
        "counts": {status: counts.get(status, 0) for status in schemas.StatusName},
        "created_at": workflow.created_at,
        "ended_at": workflow.ended_at,
        "url": workflow.get_absolute_url(),
    }


def workflow_out(workflow: Workflow) -> dict:
    steps = list(workflow.steps.order_by("step"))
    return {
        **_summary(workflow, Counter(step.status for step in steps)),
        "steps": [computation_out(step) for step in steps],
        "edges": [
            {"source": source, "target": target, "input": name or None}
            for source, target, name in workflow.edges.order_by("target", "source").values_list(
                "source", "target", "input"
            )
        ],
    }
