"""Workflows as rows: written in one transaction, each step sent once its predecessors succeeded (once, however many
settle it at the same instant), held back when one failed, resumed by a retry, cancelled whole."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from tasks import services
from tasks.models import Computation, InputValue, Status, Workflow, WorkflowEdge
from tasks.operations import OperationError
from tasks.workflows import plan, recording, settling
from tests.helpers import wait_for

ACTOR = services.Actor(source="api")


def steps_of(workflow: Workflow) -> dict[int, Computation]:
    return {step.step: step for step in workflow.steps.all()}


def ended(workflow: Workflow, timeout: float = 30) -> dict[int, Computation]:
    def done() -> dict[int, Computation] | None:
        workflow.refresh_from_db()
        return steps_of(workflow) if workflow.ended_at else None

    return wait_for(done, timeout=timeout)


def diamond() -> plan.Plan:
    """1 → 2, 1 → 3, (2, 3) → 4: 4 adds the two middle results."""
    return plan.plan(
        [
            {"operation": "add", "inputs": {"x": 1, "y": 2}},
            {"operation": "multiply", "inputs": {"x": {"step": 1}, "y": 10}},
            {"operation": "multiply", "inputs": {"x": {"step": 1}, "y": 100}},
            {"operation": "add", "inputs": {"x": {"step": 2}, "y": {"step": 3}}},
        ]
    )


@pytest.mark.django_db
def test_a_workflow_is_written_whole_and_only_its_roots_are_sent(django_capture_on_commit_callbacks, sent):
    with django_capture_on_commit_callbacks(execute=True):
        workflow = recording.submit(diamond(), actor=ACTOR)
    steps = steps_of(workflow)
    assert [steps[n].status for n in (1, 2, 3, 4)] == [Status.QUEUED, Status.WAITING, Status.WAITING, Status.WAITING]
    assert steps[2].inputs == {"x": None, "y": "10"} and steps[1].enqueued_at and not steps[2].enqueued_at
    assert [steps[n].in_main_list for n in (1, 2, 3, 4)] == [True, False, False, False]
    assert sorted(workflow.edges.values_list("source", "target", "input")) == [
        (1, 2, "x"),
        (1, 3, "x"),
        (2, 4, "x"),
        (3, 4, "y"),
    ]
    assert sent == [steps[1].pk]
    assert workflow.size == 4 and workflow.ended_at is None


@pytest.mark.django_db
def test_a_workflow_that_does_not_fit_the_queue_writes_nothing(settings):
    settings.COMPUTATION_MAX_QUEUED = 3
    with pytest.raises(services.QueueFull):
        recording.submit(diamond(), actor=ACTOR)
    assert not Workflow.objects.exists() and not Computation.objects.exists() and not WorkflowEdge.objects.exists()


def succeed(step: Computation, result: str) -> None:
    """What a worker does: claim the step, then record its result (the end settles the workflow once committed)."""
    rows = Computation.objects.filter(pk=step.pk)
    assert rows.claim(worker="test")
    assert rows.succeed(attempt=1, result=result)


def end_with(barrier: threading.Barrier, step: Computation, result: str) -> None:
    """A worker's end of a step, released with another's at the same instant, on its own connection."""
    try:
        barrier.wait()
        with transaction.atomic():
            succeed(step, result)
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_a_diamond_whose_middle_steps_end_at_the_same_instant_sends_its_last_step_once(sent):
    for _ in range(10):
        workflow = recording.submit(diamond(), actor=ACTOR)
        steps = steps_of(workflow)
        with transaction.atomic():
            succeed(steps[1], "3")
        sent.clear()
        barrier = threading.Barrier(2)
        threads = [threading.Thread(target=end_with, args=(barrier, steps[n], r)) for n, r in ((2, "30"), (3, "300"))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        last = Computation.objects.get(pk=steps[4].pk)
        assert last.status == Status.QUEUED and last.inputs == {"x": "30", "y": "300"}
        assert sent.count(last.pk) == 1, sent
        assert InputValue.objects.filter(computation=last).count() == 2
        sent.clear()


@pytest.mark.django_db(transaction=True)
def test_a_failed_step_holds_back_its_descendants_and_its_retry_resumes_them(sent):
    workflow = recording.submit(diamond(), actor=ACTOR)
    steps = steps_of(workflow)
    succeed(steps[1], "3")
    rows = Computation.objects.filter(pk=steps[2].pk)
    assert rows.claim(worker="test")
    assert rows.fail(attempt=1, error=OperationError("It broke."))
    after = steps_of(workflow)
    assert [after[n].status for n in (1, 2, 3, 4)] == [Status.SUCCEEDED, Status.FAILED, Status.QUEUED, Status.NOT_RUN]
    assert after[4].error == "Not run: step 2, which it depends on, failed."
    assert after[4].finished_at is not None

    assert services.retry(selection=services.Selection(ids=[steps[2].pk]), actor=ACTOR).changed == 1
    after = steps_of(workflow)
    # Step 2 takes step 1's result: waiting again, then queued by the settle with that result; 4 waits again.
    assert (after[2].status, after[2].inputs, after[2].attempts) == (Status.QUEUED, {"x": "3", "y": "10"}, 1)
    assert (after[4].status, after[4].error, after[4].finished_at) == (Status.WAITING, "", None)
    rows = Computation.objects.filter(pk=steps[2].pk)
    assert rows.claim(worker="test") and rows.succeed(attempt=2, result="30")
    assert Computation.objects.filter(pk=steps[3].pk).claim(worker="test")
    assert Computation.objects.filter(pk=steps[3].pk).succeed(attempt=1, result="300")
    assert Computation.objects.get(pk=steps[4].pk).status == Status.QUEUED


@pytest.mark.django_db(transaction=True)
def test_a_result_its_input_cannot_take_fails_that_step_clearly(sent):
    workflow = recording.submit(
        plan.plan(
            [
                {"operation": "divide", "inputs": {"x": 7, "y": 2}},
                {"operation": "count_primes", "inputs": {"n": {"step": 1}}},
                {"operation": "subtract", "inputs": {"x": 5, "y": 5}},
                {"operation": "divide", "inputs": {"x": 1, "y": {"step": 3}}},
                {"operation": "add", "inputs": {"x": {"step": 4}, "y": 1}},
            ]
        ),
        actor=ACTOR,
    )
    steps = steps_of(workflow)
    succeed(steps[1], "3.5")
    succeed(steps[3], "0")
    after = steps_of(workflow)
    assert after[2].status == Status.FAILED
    assert after[2].error == "The result of step 1 (3.5) is not a whole number, as n must be."
    assert (after[4].status, after[4].error) == (Status.FAILED, "Division by zero is not possible.")
    assert (after[5].status, after[5].error) == (Status.NOT_RUN, "Not run: step 4, which it depends on, failed.")
    workflow.refresh_from_db()
    assert workflow.ended_at is not None


@pytest.mark.django_db(transaction=True)
def test_the_sweep_moves_on_a_workflow_whose_settle_was_lost(sent):
    workflow = recording.submit(diamond(), actor=ACTOR)
    steps = steps_of(workflow)
    sent.clear()
    # The worker died between the step's commit and its settle: the row says succeeded, nothing else moved.
    Computation.objects.filter(pk=steps[1].pk).update(status=Status.SUCCEEDED, result="3", finished_at=timezone.now())
    assert settling.settle_stuck() == 0, "younger than a heartbeat's grace: its own settle may still come"
    Workflow.objects.filter(pk=workflow.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    assert settling.settle_stuck() == 1
    assert sorted(sent) == [steps[2].pk, steps[3].pk]


@pytest.mark.django_db
def test_retention_keeps_the_steps_of_a_workflow_that_has_not_ended():
    from tasks import retention

    workflow = recording.submit(diamond(), actor=ACTOR)
    long_ago = timezone.now() - timedelta(days=400)
    steps = steps_of(workflow)
    Computation.objects.filter(pk=steps[1].pk).update(status=Status.SUCCEEDED, finished_at=long_ago)
    Workflow.objects.filter(pk=workflow.pk).update(created_at=long_ago)
    assert retention._ended_before(timezone.now() - timedelta(days=1)).count() == 0
    Workflow.objects.filter(pk=workflow.pk).update(ended_at=long_ago)
    Computation.objects.filter(workflow=workflow).update(status=Status.CANCELLED, finished_at=long_ago)
    assert retention._ended_before(timezone.now() - timedelta(days=1)).count() == 4


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
@pytest.mark.usefixtures("celery_worker")
def test_a_workflow_runs_on_the_workers_to_its_end():
    workflow = recording.submit(
        plan.plan(
            [
                {"operation": "multiply", "inputs": {"x": 6, "y": 7}},
                {"operation": "factorize", "inputs": {"n": {"step": 1}}},
                {"operation": "add", "inputs": {"x": {"step": 1}, "y": 0.5}},
                {"operation": "sum", "inputs": {"values": [{"step": 1}, {"step": 3}, 1]}, "after": [2]},
            ]
        ),
        actor=ACTOR,
    )
    steps = ended(workflow)
    assert [steps[n].result for n in (1, 2, 3, 4)] == ["42", "2 × 3 × 7", "42.5", "85.5"]
    assert all(steps[n].status == Status.SUCCEEDED for n in steps)
    assert steps[4].started_at >= max(steps[n].finished_at for n in (1, 2, 3))


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
@pytest.mark.usefixtures("celery_worker")
def test_a_workflow_cancelled_while_a_step_runs_ends_with_nothing_more_run():
    workflow = recording.submit(
        plan.plan(
            [
                {"operation": "add", "inputs": {"x": 1, "y": 1}, "work_seconds": 30},
                {"operation": "add", "inputs": {"x": {"step": 1}, "y": 1}},
                {"operation": "add", "inputs": {"x": 5, "y": 5}},
            ]
        ),
        actor=ACTOR,
    )
    first = workflow.steps.get(step=1)
    wait_for(lambda: Computation.objects.filter(pk=first.pk, status=Status.RUNNING, progress__gt=0).exists())
    wait_for(lambda: Computation.objects.filter(workflow=workflow, step=3, status=Status.SUCCEEDED).exists())
    outcome = services.cancel(selection=services.Selection(filters={"workflow": workflow.pk}), actor=ACTOR)
    assert outcome.changed == 2
    steps = ended(workflow, timeout=10)
    assert [steps[n].status for n in (1, 2, 3)] == [Status.CANCELLED, Status.CANCELLED, Status.SUCCEEDED]
    assert steps[2].attempts == 0 and steps[2].started_at is None
