"""The workflows' use cases: submit one, and what a retry of its steps sets off. Cancel and retry go through
tasks.services as for any computations (a workflow's steps are computations), with the workflow as their selection."""

import uuid
from collections import Counter

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from .. import changes, counters, sending
from ..models import AuditEntry, Computation, InputValue, Status, Workflow, WorkflowEdge
from ..services import Actor, audit, make_room
from .plan import Plan


def submit(
    plan: Plan,
    *,
    idempotency_key: uuid.UUID | None = None,
    owner: AbstractBaseUser | None = None,
    address: str | None = None,
    actor: Actor | None = None,
) -> Workflow:
    """Records the workflow, its steps and its edges in one transaction and, once it commits, sends the steps that
    wait for none. Every step counts against the queue's cap and the client's, as a batch's computations do. A
    second submission with the same idempotency key returns the first workflow."""
    if idempotency_key and (existing := Workflow.objects.filter(idempotency_key=idempotency_key).first()):
        return existing
    make_room(len(plan.steps), owner, address)
    now = timezone.now()
    waits = {edge.target for edge in plan.edges}
    try:
        with transaction.atomic():
            workflow = Workflow.objects.create(
                name=plan.name, size=len(plan.steps), created_at=now, idempotency_key=idempotency_key, owner=owner
            )
            steps = Computation.objects.bulk_create(
                Computation(
                    operation=step.operation.name,
                    inputs=step.literal_inputs(),
                    work_seconds=step.work_seconds,
                    workflow=workflow,
                    step=step.number,
                    status=Status.WAITING if step.number in waits else Status.QUEUED,
                    in_main_list=step.number == 1,
                    owner=owner,
                    submitted_from=None if owner else address,
                    created_at=now,
                    enqueued_at=None if step.number in waits else now,
                )
                for step in plan.steps
            )
            if steps[0].pk is None:
                # MySQL's bulk insert returns no ids (MariaDB's does): they are the workflow's, in step order.
                for step, pk in zip(steps, workflow.steps.order_by("step").values_list("pk", flat=True), strict=True):
                    step.pk = pk
            WorkflowEdge.objects.bulk_create(
                WorkflowEdge(workflow=workflow, source=e.source, target=e.target, input=e.input, position=e.position)
                for e in plan.edges
            )
            InputValue.objects.bulk_create(InputValue.of((step.pk, step.inputs) for step in steps))
            if actor is not None:
                audit(
                    AuditEntry.Action.SUBMIT, actor, {"workflow": workflow.pk}, requested=len(steps), changed=len(steps)
                )
    except IntegrityError:
        if idempotency_key and (existing := Workflow.objects.filter(idempotency_key=idempotency_key).first()):
            return existing
        raise
    roots = [step.pk for step in steps if step.status == Status.QUEUED]
    transaction.on_commit(lambda: _submitted(plan, roots))
    return workflow


def _submitted(plan: Plan, roots: list[int]) -> None:
    changes.record_change()
    for operation, count in Counter(step.operation.name for step in plan.steps).items():
        counters.record_submitted(operation, count)
    sending.dispatch(roots)
