"""/api/v1/computations and /api/v1/batches: submit, list, read, cancel and retry, one or in bulk.

Each goes through what the page's own views use: the page's forms validate (the same messages, the same bounds),
dashboard.web.submitting counts and caps what is queued, tasks.services records it, access says whose it is."""

import uuid
from decimal import Decimal
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.translation import gettext
from ninja import Field as NinjaField
from ninja import Header, Query, Router, Schema, Status

from dashboard.api import gate, schemas
from dashboard.api.problems import Problem
from dashboard.computations.forms import BatchForm, ComputationForm
from dashboard.computations.timeline import history_lines, timeline
from dashboard.web import access, throttling
from tasks import services
from tasks.models import AuditEntry, Batch, Computation, merged_page, search_sources
from tasks.services import BULK_CAP

router = Router(tags=["computations"])
# Idempotency keys are the client's own: the same key from two people names two submissions.
IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1c8a52-3d0e-4f57-9a53-1f3c1d0c7e21")
IdempotencyKey = Header(
    None,
    alias="Idempotency-Key",
    max_length=255,
    description="Any text: a retried request with the same key returns the first answer and creates nothing.",
)


class ListQuery(Schema):
    status: schemas.StatusName | None = None
    operation: schemas.OperationName | None = None
    q: schemas.Search = NinjaField("", description="The list's search: #42, a task id, an operation, an exact value.")
    batch: schemas.Id | None = NinjaField(None, description="Only this batch's computations.")
    before: schemas.Id | None = NinjaField(None, description="The cursor: rows older than this id (see `next`).")
    limit: int = NinjaField(25, ge=1, le=100)


@router.post("/computations", response={201: schemas.ComputationOut}, summary="Submit a computation")
def submit(
    request: HttpRequest,
    payload: schemas.ComputationIn,
    response: HttpResponse,
    idempotency_key: str | None = IdempotencyKey,
) -> Status:
    data = _form_data(payload.operation, payload.inputs.model_dump(), payload.work_seconds, request, idempotency_key)
    form = ComputationForm(data, actor=access.actor(request, AuditEntry.Source.API))
    computation = gate.submitted(request, form, {"operation": "#/operation"})
    response["Location"] = reverse("api-v1:computation", args=[computation.pk])
    return Status(201, computation_out(computation))


@router.get(
    "/computations",
    response=schemas.ComputationList,
    url_name="computations",
    summary="List computations, newest first",
)
def computations(request: HttpRequest, query: Query[ListQuery]) -> dict:
    rows = Computation.objects.visible_to(access.owner_scope(request))
    matching = {key: getattr(query, key) for key in ("status", "operation", "batch") if getattr(query, key)}
    page = merged_page(search_sources(rows.filter(**matching), query.q), before=query.before, size=query.limit)
    next_url = None
    if page.older_before is not None:
        kept = {key: value for key, value in query.dict().items() if value not in (None, "") and key != "before"}
        next_url = f"{reverse('api-v1:computations')}?{urlencode({**kept, 'before': page.older_before})}"
    return {"items": [computation_out(row) for row in page.rows], "next": next_url}


@router.get("/computations/{int:pk}", response=schemas.ComputationDetail, url_name="computation", summary="Read one")
def computation(request: HttpRequest, pk: int) -> dict:
    found = _visible(request, pk)
    history = history_lines(found.audit_entries.select_related("user")[:20])
    steps = [
        {"at": step.when.iso, "kind": step.kind, "title": step.title, "detail": step.detail}
        for step in timeline(found, history)
    ]
    return {**computation_out(found), "timeline": steps}


@router.post("/computations/{int:pk}/cancel", response=schemas.ComputationOut, summary="Cancel one")
def cancel(request: HttpRequest, pk: int) -> dict:
    return _act_on_one(request, pk, AuditEntry.Action.CANCEL, gettext("Only a queued or running one can be cancelled."))


@router.post("/computations/{int:pk}/retry", response=schemas.ComputationOut, summary="Retry one")
def retry(request: HttpRequest, pk: int) -> dict:
    return _act_on_one(request, pk, AuditEntry.Action.RETRY, gettext("Only a failed or cancelled one can be retried."))


@router.post("/computations/cancel", response=schemas.BulkOut, summary="Cancel many, by ids or by filter")
def cancel_many(request: HttpRequest, payload: schemas.BulkIn) -> dict:
    return _act_on_many(request, AuditEntry.Action.CANCEL, payload)


@router.post("/computations/retry", response=schemas.BulkOut, summary="Retry many, by ids or by filter")
def retry_many(request: HttpRequest, payload: schemas.BulkIn) -> dict:
    return _act_on_many(request, AuditEntry.Action.RETRY, payload)


@router.post("/batches", response={201: schemas.BatchOut}, tags=["batches"], summary="Submit a batch over a range")
def submit_batch(
    request: HttpRequest,
    payload: schemas.BatchIn,
    response: HttpResponse,
    idempotency_key: str | None = IdempotencyKey,
) -> Status:
    data = _form_data(payload.operation, payload.inputs, payload.work_seconds, request, idempotency_key)
    data |= {"varied": payload.vary, **{name: _text(getattr(payload, name)) for name in ("start", "stop", "step")}}
    form = BatchForm(data, actor=access.actor(request, AuditEntry.Source.API))
    batch = gate.submitted(request, form, {"operation": "#/operation", "varied": "#/vary"})
    response["Location"] = reverse("api-v1:batch", args=[batch.pk])
    return Status(201, batch_out(batch))


@router.get("/batches/{int:pk}", response=schemas.BatchOut, url_name="batch", tags=["batches"], summary="Read one")
def batch(request: HttpRequest, pk: int) -> dict:
    found = Batch.objects.visible_to(access.owner_scope(request)).filter(pk=pk).first()
    if found is None:
        raise Problem(404, "not-found", gettext("No batch has this id."))
    return batch_out(found)


def _form_data(
    operation: str, inputs: dict[str, Decimal | int | list], work_seconds: int, request: HttpRequest, key: str | None
) -> dict[str, str]:
    """A submission's JSON as the page's form posts it: the same validation, messages and bounds."""
    spec = schemas.REGISTRY[operation]
    unknown = sorted(set(inputs) - {each.name for each in spec.inputs})
    if unknown:
        message = gettext("%(operation)s has no input of this name.") % {"operation": operation}
        raise Problem(422, "invalid", errors=[{"pointer": f"#/inputs/{name}", "detail": message} for name in unknown])
    return {
        "operation": operation,
        "work_seconds": str(work_seconds),
        "idempotency_key": str(client_idempotency_key(request, key)) if key else "",
        **{name: _text(value) for name, value in inputs.items()},
    }


def _text(value: Decimal | int | list) -> str:
    """A number as a form field holds it: plain digits, never an exponent (1E+3); several, apart by commas."""
    if isinstance(value, list):
        return ", ".join(_text(each) for each in value)
    return format(value, "f") if isinstance(value, Decimal) else str(value)


def client_idempotency_key(request: HttpRequest, key: str) -> uuid.UUID:
    """The key, as the client's own: the person's, else the address's."""
    return uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{throttling.person_or_address(request)}\n{key}")


def _visible(request: HttpRequest, pk: int) -> Computation:
    found = Computation.objects.visible_to(access.owner_scope(request)).filter(pk=pk).first()
    if found is None:
        raise Problem(404, "not-found", gettext("No computation has this id."))
    return found


def _act_on_one(request: HttpRequest, pk: int, action: str, refusal: str) -> dict:
    found = _visible(request, pk)
    if not access.may_act_on(request, found.owner_id):
        raise Problem(403, "forbidden", gettext("You may see this, not change it: it is someone else's."))
    selection = services.Selection(ids=[pk], owner=access.owner_scope(request, acting=True))
    outcome = gate.act(request, action, selection)
    found.refresh_from_db()
    if not outcome.changed:
        raise Problem(409, "conflict", refusal, extra={"computation": computation_out(found)})
    return computation_out(found)


def _act_on_many(request: HttpRequest, action: str, payload: schemas.BulkIn) -> dict:
    if (payload.ids is None) == (payload.filter is None):
        detail = gettext("Give either 'ids' or 'filter', not both and not neither.")
        raise Problem(422, "invalid", detail, errors=[{"pointer": "#", "detail": detail}])
    owner = access.owner_scope(request, acting=True)
    if payload.ids is not None:
        selection = services.Selection(ids=payload.ids, owner=owner)
    else:
        chosen = payload.filter
        filters = {key: getattr(chosen, key) for key in ("status", "operation") if getattr(chosen, key)}
        selection = services.Selection(filters=filters, search=chosen.q, owner=owner)
    outcome = gate.act(request, action, selection)
    return {"requested": outcome.requested, "changed": outcome.changed, "capped": outcome.capped}


def computation_out(computation: Computation) -> dict:
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
        "batch": computation.batch_id,
        "workflow": computation.workflow_id,
        "step": computation.step,
        "task_id": str(computation.task_id),
        "created_at": computation.created_at,
        "started_at": computation.started_at,
        "finished_at": computation.finished_at,
        "updated_at": computation.updated_at,
        "url": computation.get_absolute_url(),
    }


def batch_out(batch: Batch) -> dict:
    counts = batch.computations.status_counts(cap=BULK_CAP)
    return {
        "id": batch.pk,
        "operation": batch.operation,
        "vary": batch.varied,
        "start": batch.start,
        "stop": batch.stop,
        "step": batch.step,
        "inputs": batch.fixed_inputs,
        "work_seconds": batch.work_seconds,
        "size": batch.size,
        "counts": dict(counts.by_status),
        "created_at": batch.created_at,
        "url": batch.get_absolute_url(),
        "computations": f"{reverse('api-v1:computations')}?{urlencode({'batch': batch.pk})}",
    }
