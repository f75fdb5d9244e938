"""Computations run to their end on a real Celery worker consuming the real Redis broker."""

import re
from datetime import UTC, timedelta

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from tasks import jobs, queues, sending, services
from tasks.models import Computation, Status
from tasks.operations import REGISTRY, OperationError
from tests import factories
from tests.helpers import HTMX, wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.worker,
    pytest.mark.usefixtures("celery_worker"),
]

ACTOR = services.Actor(source="api")


def submit_through_the_form(client, **data: str) -> Computation:
    response = client.post(reverse("computations"), data, **HTMX)
    assert response.status_code == 200, response.content
    return Computation.objects.latest("pk")


def final(computation: Computation, timeout: float = 30) -> Computation:
    def ended() -> Computation | None:
        computation.refresh_from_db()
        return computation if not computation.is_in_flight else None

    return wait_for(ended, timeout=timeout)


@pytest.mark.parametrize(
    ("data", "result"),
    [
        ({"operation": "add", "x": "0.1", "y": "0.2"}, "0.3"),
        ({"operation": "divide", "x": "22", "y": "7"}, "3.142857142857142857142857142857142857143"),
        ({"operation": "count_primes", "n": "1000000"}, "78498"),
        ({"operation": "factorize", "n": "600851475143"}, "71 × 839 × 1471 × 6857"),
        ({"operation": "estimate_pi", "samples": "1000", "seed": "3"}, None),
    ],
)
def test_a_submission_reaches_succeeded_through_the_worker(client, data, result):
    computation = final(submit_through_the_form(client, **data))
    assert computation.status == Status.SUCCEEDED, computation.error
    assert computation.progress == 100 and computation.attempts == 1
    assert computation.worker and computation.started_at <= computation.finished_at
    if result is not None:
        assert computation.result == result
    else:
        assert computation.result == REGISTRY["estimate_pi"].function({"samples": 1000, "seed": 3}, lambda d, t: None)


def test_progress_is_visible_while_running(client):
    computation = submit_through_the_form(client, operation="count_primes", n="100000", work_seconds="3")

    def midway() -> Computation | None:
        computation.refresh_from_db()
        return computation if computation.status == Status.RUNNING and 0 < computation.progress < 100 else None

    wait_for(midway)
    partial = client.get(reverse("computations"), **HTMX)
    assert partial.status_code == 200
    assert f'aria-label="Progress of #{computation.pk}"' in partial.content.decode()
    assert final(computation).status == Status.SUCCEEDED


def test_cancelling_a_running_computation_stops_it_at_its_next_report(client):
    computation = submit_through_the_form(client, operation="add", x="1", y="2", work_seconds="30")
    wait_for(lambda: Computation.objects.filter(pk=computation.pk, status=Status.RUNNING, progress__gt=0).exists())

    response = client.post(reverse("computation-cancel", args=[computation.pk]), **HTMX)
    assert response.status_code == 200
    computation.refresh_from_db()
    assert computation.status == Status.CANCELLED
    progress = computation.progress

    # The worker is free again at once: a new computation ends long before the cancelled one's 30 s.
    follower = final(submit_through_the_form(client, operation="add", x="2", y="2"), timeout=10)
    assert follower.status == Status.SUCCEEDED
    computation.refresh_from_db()
    assert (computation.status, computation.progress, computation.result) == (Status.CANCELLED, progress, "")


def test_a_computation_cancelled_before_it_starts_never_runs():
    with transaction.atomic():
        computation = services.submit(operation=REGISTRY["add"], inputs={"x": 1, "y": 1})
        assert services.cancel(selection=services.Selection(ids=[computation.pk]), actor=ACTOR).changed
    # Its task is delivered and finds nothing to do; the next one proves the queue moved past it.
    follower = final(services.submit(operation=REGISTRY["add"], inputs={"x": 2, "y": 2}))
    assert follower.status == Status.SUCCEEDED
    computation.refresh_from_db()
    assert computation.status == Status.CANCELLED and computation.attempts == 0 and computation.started_at is None


def test_retry_runs_a_cancelled_computation_again(client):
    with transaction.atomic():
        computation = services.submit(operation=REGISTRY["multiply"], inputs={"x": 6, "y": 7})
        services.cancel(selection=services.Selection(ids=[computation.pk]), actor=ACTOR)
    response = client.post(reverse("computation-retry", args=[computation.pk]), **HTMX)
    assert response.status_code == 200
    computation = final(computation)
    assert computation.status == Status.SUCCEEDED and computation.result == "42"


def test_a_failing_computation_records_its_error_and_can_be_retried():
    computation = factories.computation(operation="retired_operation", inputs={})
    sending.enqueue(computation)
    computation = final(computation)
    assert computation.status == Status.FAILED
    assert computation.error == "Unknown operation retired_operation."
    assert services.retry(selection=services.Selection(ids=[computation.pk]), actor=ACTOR).changed
    computation = final(computation)
    assert computation.status == Status.FAILED and computation.attempts == 2


def test_a_duplicate_delivery_runs_nothing_twice():
    computation = services.submit(operation=REGISTRY["add"], inputs={"x": 1, "y": 2})
    final(computation)
    sending.enqueue(computation)
    sending.enqueue(computation)
    follower = final(services.submit(operation=REGISTRY["add"], inputs={"x": 5, "y": 5}))
    assert follower.status == Status.SUCCEEDED
    computation.refresh_from_db()
    assert computation.attempts == 1 and computation.result == "3"


def left_running_by_a_dead_worker(**fields: object) -> Computation:
    """1 + 1, running on a worker whose heartbeat stopped five minutes ago."""
    stale = timezone.now() - timedelta(minutes=5)
    return factories.computation(Status.RUNNING, inputs={"x": "1", "y": "1"}, updated_at=stale, **fields)


def test_a_row_left_running_by_a_dead_worker_is_taken_over():
    computation = left_running_by_a_dead_worker(attempts=1, worker="celery@gone")
    sending.enqueue(computation)
    computation = final(computation)
    assert computation.status == Status.SUCCEEDED and computation.attempts == 2 and computation.result == "2"
    assert computation.worker != "celery@gone"


def test_a_row_whose_attempts_are_used_up_fails_with_a_clear_error():
    computation = left_running_by_a_dead_worker(attempts=3, max_attempts=3)
    sending.enqueue(computation)
    computation = final(computation)
    assert computation.status == Status.FAILED
    assert computation.error == "Gave up: the worker running this computation stopped on each attempt."


def test_the_sweep_sends_what_the_broker_never_took():
    # As submit() leaves a row when the broker was down: committed, queued, never sent.
    computation = factories.computation(inputs={"x": "20", "y": "22"}, enqueued_at=None)
    jobs.sweep()
    computation = final(computation)
    assert computation.status == Status.SUCCEEDED and computation.result == "42"
    assert computation.enqueued_at is not None


def test_the_sweep_sends_a_dead_workers_rows_again():
    long_ago = timezone.now() - timedelta(minutes=5)
    running = factories.computation(
        Status.RUNNING, inputs={"x": "1", "y": "1"}, attempts=1, updated_at=long_ago, enqueued_at=long_ago
    )
    # Held by a worker that died before it started it; the broker's queue is empty meanwhile.
    reserved = factories.computation(inputs={"x": "2", "y": "2"}, enqueued_at=long_ago)
    jobs.sweep()
    assert (final(running).status, running.attempts, running.result) == (Status.SUCCEEDED, 2, "2")
    assert (final(reserved).status, reserved.attempts, reserved.result) == (Status.SUCCEEDED, 1, "4")


def test_the_sweep_leaves_rows_that_are_on_their_way_alone():
    now = timezone.now()
    factories.computation(inputs={"x": "1", "y": "1"}, enqueued_at=now)
    factories.computation(
        Status.RUNNING, inputs={"x": "1", "y": "1"}, attempts=1, updated_at=now, enqueued_at=now - timedelta(minutes=5)
    )
    factories.computation(Status.SUCCEEDED, inputs={"x": "1", "y": "1"}, enqueued_at=None)
    assert sending.sweep(empty_queues=queues.NAMES) == 0


def test_metrics_count_submissions_and_outcomes_with_their_times(client):
    final(submit_through_the_form(client, operation="add", x="1", y="2"))
    final(submit_through_the_form(client, operation="factorize", n="360"))
    cancelled = submit_through_the_form(client, operation="add", x="1", y="1", work_seconds="30")
    client.post(reverse("computation-cancel", args=[cancelled.pk]), **HTMX)
    text = client.get(reverse("metrics"), HTTP_X_DASHBOARD_LISTENER="monitoring").content.decode()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert samples[("dashboard_computations_submitted_total", (("operation", "add"),))] == 2
    assert samples[("dashboard_computations_finished_total", (("operation", "add"), ("status", "succeeded")))] == 1
    assert samples[("dashboard_computations_finished_total", (("operation", "add"), ("status", "cancelled")))] == 1
    assert samples[("dashboard_computation_run_seconds_count", (("operation", "factorize"),))] == 1
    assert samples[("dashboard_computation_end_to_end_seconds_bucket", (("le", "+Inf"), ("operation", "add")))] == 1


def test_each_attempt_is_kept_when_the_next_replaces_it(client):
    """A dead worker's attempt and a failed one survive the attempts that replace them (in the same UPDATE), and the
    computation's page shows each: where it ran, from when to when, how it ended."""
    computation = factories.computation(Status.QUEUED)
    rows = Computation.objects.filter(pk=computation.pk)
    assert rows.claim(worker="first@host") == 1
    died = timezone.now() - timedelta(minutes=5)
    # Submitted and started six minutes ago; its heartbeat stopped five minutes ago.
    rows.update(created_at=died - timedelta(minutes=1), started_at=died - timedelta(minutes=1), updated_at=died)
    assert rows.claim(worker="second@host") == 1
    assert rows.fail(attempt=2, error=OperationError("Stopped")) == 1
    cancelled_while_queued = factories.computation(Status.CANCELLED)
    assert Computation.objects.filter(pk__in=[computation.pk, cancelled_while_queued.pk]).requeue() == 2
    computation.refresh_from_db()
    first, second = computation.earlier_attempts  # as the database wrote them
    assert (first["attempt"], first["worker"], first["status"]) == (1, "first@host", "running")
    assert first["ended"].startswith(died.strftime("%Y-%m-%d %H:%M:%S")), "a lost attempt ends at its heartbeat"
    assert (second["attempt"], second["worker"], second["status"]) == (2, "second@host", "failed")
    assert computation.worker == "" and computation.status == Status.QUEUED
    cancelled_while_queued.refresh_from_db()
    assert cancelled_while_queued.earlier_attempts is None, "it never started: no attempt to keep"
    html = client.get(computation.get_absolute_url()).content.decode()
    steps = re.findall(r'<li class="step step-(\w+)">', html)
    assert steps[:5] == ["queued", "running", "lost", "running", "failed"], steps
    assert "attempt 1, on first@host" in html and "Worker lost" in html and "attempt 2, on second@host" in html
    api = client.get(reverse("api-computation", args=[computation.pk])).json()
    assert [attempt["worker"] for attempt in api["earlier_attempts"]] == ["first@host", "second@host"]
    assert api["earlier_attempts"][0]["ended"].startswith(died.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"))
