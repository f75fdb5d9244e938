"""Retention: ended computations past COMPUTATION_RETENTION_DAYS go, in batches, with their search values and their
emptied batches; queued and running ones stay, and so do their counts (rollups) and the audit trail."""

import datetime
import re

import pytest
from django.core.cache import cache
from django.db.models import Sum
from django.urls import reverse

from tasks import retention, rollups, services
from tasks.models import AuditEntry, Batch, Computation, InputValue, Rollup, Status
from tests import factories
from tests.factories import computation

pytestmark = pytest.mark.django_db

UTC = datetime.UTC
NOW = datetime.datetime(2026, 11, 30, 12, 30, 20, tzinfo=UTC)
DAY = datetime.timedelta(days=1)


def ended(days_ago: float, status: str = Status.SUCCEEDED, **fields: object) -> Computation:
    finished = NOW - days_ago * DAY
    row = computation(status, created_at=finished, started_at=finished, finished_at=finished, **fields)
    InputValue.objects.bulk_create(InputValue.of([(row.pk, row.inputs)]))
    return row


def counted() -> int:
    return Rollup.objects.filter(resolution=Rollup.Resolution.HOUR).aggregate(total=Sum("count"))["total"] or 0


def test_ended_computations_past_retention_go_and_their_counts_stay(settings):
    settings.COMPUTATION_RETENTION_DAYS = 2
    old = [ended(3, status) for status in (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)] + [ended(2.5)]
    batch = factories.batch(computations=False, created_at=NOW - 3 * DAY)
    old += [ended(3, batch=batch), ended(3, batch=batch)]
    kept_batch = factories.batch(computations=False, created_at=NOW - 3 * DAY)
    ended(3, batch=kept_batch)
    in_batch_still_running = computation(Status.RUNNING, batch=kept_batch, created_at=NOW - 3 * DAY)
    recent = ended(1)
    queued = computation(Status.QUEUED, created_at=NOW - 10 * DAY)
    running = computation(Status.RUNNING, created_at=NOW - 10 * DAY, started_at=NOW - 10 * DAY)
    rollups.roll_up(NOW)
    before = counted()

    pruned = retention.prune(NOW, batch=2)

    assert pruned.computations == len(old) + 1
    assert pruned.done
    assert pruned.batches == 1
    assert set(Computation.objects.values_list("pk", flat=True)) == {
        recent.pk,
        queued.pk,
        running.pk,
        in_batch_still_running.pk,
    }
    assert not InputValue.objects.filter(computation_id__in=[row.pk for row in old]).exists()
    assert InputValue.objects.filter(computation_id=recent.pk).exists()
    assert set(Batch.objects.values_list("pk", flat=True)) == {kept_batch.pk}
    assert counted() == before == len(old) + 2
    assert retention.last_prune() == pruned


def test_retention_zero_keeps_everything(settings):
    settings.COMPUTATION_RETENTION_DAYS = 0
    ended(400)
    rollups.roll_up(NOW)
    assert retention.prune(NOW).computations == 0
    assert Computation.objects.count() == 1


def test_nothing_goes_that_the_rollups_have_not_counted(settings):
    settings.COMPUTATION_RETENTION_DAYS = 30
    oldest, older = ended(100), ended(50)
    assert retention.prune(NOW).computations == 0, "the rollups have never run"

    # The first roll-up backfills 31 days of history, from the oldest: the row 50 days old is not counted yet.
    rollups.roll_up(NOW)
    assert retention.prune(NOW).computations == 1
    assert list(Computation.objects.values_list("pk", flat=True)) == [older.pk]

    rollups.roll_up(NOW)
    assert retention.prune(NOW).computations == 1
    assert counted() == 2
    assert not Computation.objects.filter(pk__in=[oldest.pk, older.pk]).exists()


def test_a_prune_that_runs_out_of_time_leaves_the_rest_to_the_next(settings):
    settings.COMPUTATION_RETENTION_DAYS = 1
    for _ in range(5):
        ended(3)
    rollups.roll_up(NOW)
    first = retention.prune(NOW, seconds=0, batch=2)
    assert (first.computations, first.done) == (2, False)
    assert Computation.objects.count() == 3
    assert retention.prune(NOW, batch=2).computations == 3


def test_audit_entries_keep_and_count_their_pruned_computations(settings, admin_client):
    settings.COMPUTATION_RETENTION_DAYS = 1
    rows = [computation(Status.QUEUED) for _ in range(3)]
    actor = services.Actor(source=AuditEntry.Source.DASHBOARD)
    services.cancel(selection=services.Selection(ids=[row.pk for row in rows]), actor=actor)
    # Two of them ended long ago, as far as retention can tell.
    Computation.objects.filter(pk__in=[rows[0].pk, rows[1].pk]).update(finished_at=NOW - 3 * DAY)
    rollups.roll_up(NOW)

    assert retention.prune(NOW).computations == 2

    entry = AuditEntry.objects.get()
    assert (entry.changed, entry.pruned) == (3, 2)
    assert list(entry.computations.values_list("pk", flat=True)) == [rows[2].pk]
    assert sorted(entry.links.values_list("computation_id", flat=True)) == sorted(row.pk for row in rows)
    page = admin_client.get(f"/admin/tasks/auditentry/{entry.pk}/change/")
    assert "2 of its computations were pruned" in page.text


def test_the_storage_page_and_metrics_tell_operators_what_is_kept(settings, client):
    settings.COMPUTATION_RETENTION_DAYS = 1
    for _ in range(3):
        ended(3)
    ended(0.5, Status.FAILED)
    computation(Status.QUEUED)
    rollups.roll_up(NOW)
    retention.prune(NOW)
    cache.clear()

    client.force_login(factories.operator(read_only=True))
    page = client.get(reverse("storage"))
    assert page.status_code == 200
    text = " ".join(page.text.split())
    assert "Ended computations are deleted 1 day after they end" in text
    assert "3 computations deleted in" in text
    assert re.search(r'status-failed">Failed</span></th><td class="number">1</td>', text)
    assert re.search(r'status-queued">Queued</span></th><td class="number">1</td>', text)
    assert "<code>tasks_computation</code>" in text and "<code>tasks_rollup</code>" in text
    assert "Rollups per hour" in text

    metrics = client.get(reverse("metrics"), HTTP_X_DASHBOARD_LISTENER="monitoring").text
    assert 'dashboard_computation_rows{status="failed"} 1.0' in metrics
    assert "dashboard_prune_last_rows 3.0" in metrics
    assert "dashboard_retention_days 1.0" in metrics
    assert re.search(r'dashboard_table_bytes\{part="index",table="tasks_computation"\} [1-9]', metrics)
    assert 'dashboard_rollups_first_timestamp_seconds{resolution="hour"}' in metrics

    person = factories.signed_in(factories.person())
    assert person.get(reverse("storage")).status_code == 403, "operators only"
