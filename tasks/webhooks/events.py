"""What the end of computations sets off (tasks.models.computations_ended, connected in tasks/apps.py): a delivery of
computation.ended for each webhook of each one's owner, and of batch.ended for a batch whose last computation this
was, once (BatchQuerySet.end); then their first attempts go to the workers. It runs where the end was recorded, once
it committed: on a worker, or in the web request that cancelled (which only writes rows and sends a message)."""

from collections import defaultdict
from collections.abc import Collection, Iterable
from datetime import UTC, datetime

from django.utils import timezone

from ..models import Batch, Computation, ComputationQuerySet, Status, Webhook, WebhookDelivery
from . import delivering

Event = WebhookDelivery.Event
# What a computation.ended tells of the computation.
COMPUTATION_FIELDS = (
    "operation",
    "inputs",
    "status",
    "result",
    "error",
    "batch_id",
    "owner_id",
    "created_at",
    "finished_at",
)


def on_computations_ended(sender: type[Computation], *, rows: ComputationQuerySet, **kwargs: object) -> None:
    """The deliveries of these ended computations and of the batches they ended, their first attempts sent."""
    ended = list(rows.only(*COMPUTATION_FIELDS))
    batches = {computation.batch_id for computation in ended if computation.batch_id}
    deliveries = [*_computations_ended(ended), *_batches_ended(batches, timezone.now())]
    if deliveries:
        WebhookDelivery.objects.bulk_create(deliveries)
        delivering.send([str(delivery.delivery_id) for delivery in deliveries])


def _computations_ended(ended: list[Computation]) -> Iterable[WebhookDelivery]:
    hooks = _webhooks_of({computation.owner_id for computation in ended if computation.owner_id})
    for computation in ended:
        for hook in hooks.get(computation.owner_id, ()):
            yield _delivery(hook, Event.COMPUTATION_ENDED, computation.finished_at, computation_data(computation))


def _batches_ended(batches: Collection[int], now: datetime) -> Iterable[WebhookDelivery]:
    """The deliveries of the batches that these ends ended: only the end whose UPDATE marks a batch ended has them
    sent, so two last computations ending at once send one."""
    for pk in sorted(batches):
        if not Batch.objects.filter(pk=pk).end(now):
            continue
        batch = Batch.objects.get(pk=pk)
        hooks = list(Webhook.objects.filter(owner_id=batch.owner_id).only("pk")) if batch.owner_id else []
        if hooks:
            data = batch_data(batch)
            yield from (_delivery(hook, Event.BATCH_ENDED, now, data) for hook in hooks)


def _webhooks_of(owners: set[int]) -> dict[int, list[Webhook]]:
    """The webhooks of these people, by person (no query for nobody: most computations have no owner)."""
    found = defaultdict(list)
    if owners:
        for hook in Webhook.objects.filter(owner_id__in=owners).only("pk", "owner_id"):
            found[hook.owner_id].append(hook)
    return found


def _delivery(hook: Webhook, event: str, at: datetime, data: dict) -> WebhookDelivery:
    return WebhookDelivery(webhook=hook, event=event, payload={"type": event, "timestamp": _moment(at), "data": data})


def computation_data(computation: Computation) -> dict:
    """A computation as computation.ended tells it."""
    return {
        "id": computation.pk,
        "operation": computation.operation,
        "inputs": computation.inputs,
        "status": computation.status,
        "result": computation.result or None,
        "error": computation.error or None,
        "batch": computation.batch_id,
        "created_at": _moment(computation.created_at),
        "finished_at": _moment(computation.finished_at),
        "url": computation.get_absolute_url(),
    }


def batch_data(batch: Batch) -> dict:
    """A batch as batch.ended tells it: its computations counted by status."""
    counts = Computation.objects.filter(batch=batch).status_counts(cap=batch.size)
    return {
        "id": batch.pk,
        "operation": batch.operation,
        "size": batch.size,
        "counts": {status: counts[status] for status in Status.values},
        "created_at": _moment(batch.created_at),
        "ended_at": _moment(batch.ended_at),
        "url": batch.get_absolute_url(),
    }


def _moment(at: datetime | None) -> str | None:
    """ISO 8601 in UTC, as Standard Webhooks' examples write it: 2026-01-31T12:00:00.123456Z."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if at else None
