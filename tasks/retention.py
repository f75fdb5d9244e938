"""Retention: ended computations older than COMPUTATION_RETENTION_DAYS are deleted, their history kept in the
rollups (tasks.rollups) and the audit trail (whose links keep the ids of what they acted on).

Beat sends `prune` every ten minutes (CELERY_BEAT_SCHEDULE). A run deletes BATCH rows a statement, oldest first
by the index on (finished_at, status), and pauses between statements as long as the last one took, so it never
holds a long lock and leaves the database at least half of its time for the submissions and the workers. It
stops after PRUNE_SECONDS and the next run goes on. Queued and running rows are never deleted; a batch is deleted
once all of its computations are; a workflow's steps go together once it ended, and the workflow with them. Nothing
is deleted that the rollups have not counted yet. Schedules' runs go by the same retention; webhooks' deliveries
after DELIVERY_RETENTION, whatever it says.
"""

import contextlib
import datetime
import json
import logging
import time
from dataclasses import asdict, dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from redis.exceptions import RedisError

from . import redis_clients
from .models import ENDED, Batch, Computation, InputValue, RollupMark, ScheduleRun, WebhookDelivery, Workflow
from .rollups import MINUTE, RECOUNT_MINUTES

logger = logging.getLogger(__name__)

BATCH = 2000
PRUNE_SECONDS = 240
MIN_PAUSE_SECONDS = 0.02
LAST_PRUNE = "dashboard:prune:last"
# A webhook's delivery log reaches back this far (its page shows the latest): a log, not history.
DELIVERY_RETENTION = datetime.timedelta(days=7)


@dataclass(frozen=True)
class Pruned:
    """One run of the prune: when it started, the moment before which it deleted, what and how long it took."""

    at: float
    before: str | None
    computations: int
    batches: int
    seconds: float
    done: bool  # False when it stopped at PRUNE_SECONDS with rows left, for the next run

    @property
    def rows_per_second(self) -> float | None:
        return self.computations / self.seconds if self.seconds else None

    @property
    def started(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.at, datetime.UTC)


def prune_before(now: datetime.datetime) -> datetime.datetime | None:
    """The moment before which ended computations go: `now` less the retention, and never later than what the
    rollups have counted for good (minutes they may count again, or history they have not backfilled yet, stay).
    None when nothing may go: retention is off, or the rollups have never run."""
    days = settings.COMPUTATION_RETENTION_DAYS
    mark = RollupMark.objects.first()
    if days <= 0 or mark is None:
        return None
    if mark.backfilled_to < mark.minutes_from:
        counted_to = mark.backfilled_to
    else:
        counted_to = mark.rolled_to - RECOUNT_MINUTES * MINUTE
    return min(now - datetime.timedelta(days=days), counted_to)


def prune(now: datetime.datetime | None = None, *, seconds: float = PRUNE_SECONDS, batch: int = BATCH) -> Pruned:
    """Deletes what retention lets go, for at most `seconds`, and records the run (`last_prune`)."""
    at, started, now = time.time(), time.monotonic(), now or timezone.now()
    before = prune_before(now)
    deleted = batches = 0
    done = True
    if before is not None:
        while pks := list(_ended_before(before).values_list("pk", flat=True)[:batch]):
            statement = time.monotonic()
            deleted += _delete(pks, before)
            if time.monotonic() - started > seconds:
                done = False
                break
            time.sleep(max(MIN_PAUSE_SECONDS, time.monotonic() - statement))
        batches = _delete_emptied_batches(before)
        _delete_emptied_workflows(before)
        _delete_schedule_runs(before)
    _delete_webhook_deliveries(now - DELIVERY_RETENTION)
    pruned = Pruned(
        at=at,
        before=before.isoformat() if before else None,
        computations=deleted,
        batches=batches,
        seconds=round(time.monotonic() - started, 3),
        done=done,
    )
    with contextlib.suppress(RedisError):  # the record is for the storage panel; the prune is done either way
        redis_clients.durable().set(LAST_PRUNE, json.dumps(asdict(pruned)))
    logger.info("pruned %s computations and %s batches in %.1f s", deleted, batches, pruned.seconds)
    return pruned


def last_prune() -> Pruned | None:
    raw = redis_clients.durable().get(LAST_PRUNE)
    return Pruned(**json.loads(raw)) if raw else None


def _ended_before(before: datetime.datetime):
    # A workflow's steps go together, once the workflow ended: its page never shows half of them.
    whole = Q(workflow__isnull=True) | Q(workflow__ended_at__lt=before)
    return Computation.objects.filter(whole, finished_at__lt=before, status__in=ENDED).order_by("finished_at")


def _delete(pks: list[int], before: datetime.datetime) -> int:
    """Deletes those of `pks` still ended before `before`, locked first so that a retry in between waits and finds
    its row gone, rather than its row losing its search values. The audit trail's links stay."""
    with transaction.atomic():
        locked = list(_ended_before(before).filter(pk__in=pks).select_for_update().values_list("pk", flat=True))
        InputValue.objects.filter(computation_id__in=locked).delete()
        # One statement (Django's delete() would read the rows first, for the relations it knows to cascade:
        # InputValue, done above, and the audit links, which stay).
        return Computation.objects.filter(pk__in=locked)._raw_delete(Computation.objects.db)


def _delete_emptied_workflows(before: datetime.datetime) -> None:
    emptied = Workflow.objects.filter(created_at__lt=before, steps__isnull=True)
    Workflow.objects.filter(pk__in=list(emptied.values_list("pk", flat=True)[:10_000])).delete()


def _delete_schedule_runs(before: datetime.datetime) -> None:
    """A schedule's runs go with the same retention as computations (they keep the id of one that was pruned)."""
    while pks := list(ScheduleRun.objects.filter(fired_at__lt=before).values_list("pk", flat=True)[:BATCH]):
        ScheduleRun.objects.filter(pk__in=pks).delete()


def _delete_webhook_deliveries(before: datetime.datetime) -> None:
    while pks := list(WebhookDelivery.objects.filter(created_at__lt=before).values_list("pk", flat=True)[:BATCH]):
        WebhookDelivery.objects.filter(pk__in=pks).delete()


def _delete_emptied_batches(before: datetime.datetime) -> int:
    emptied = Batch.objects.filter(created_at__lt=before, computations__isnull=True)
    _, deleted = Batch.objects.filter(pk__in=list(emptied.values_list("pk", flat=True)[:10_000])).delete()
    return deleted.get(Batch._meta.label, 0)
