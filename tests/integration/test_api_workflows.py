"""/api/v1/workflows: a workflow as JSON, checked whole (a 422 names each step and input at fault, and nothing is
written), read back with its steps and edges, cancelled and retried whole, counted against the limits by its steps."""

import pytest

from tasks.models import AuditEntry, Computation, Status, Workflow
from tests.integration.test_api import problem, program

pytestmark = pytest.mark.django_db

PIPELINE = {
    "name": "product, then its factors",
    "steps": [
        {"operation": "multiply", "inputs": {"x": 6, "y": "7"}},
        {"operation": "factorize", "inputs": {"n": {"step": 1}}},
        {"operation": "sum", "inputs": {"values": [{"step": 1}, 0.5]}, "after": [2]},
    ],
}


@pytest.fixture(autouse=True)
def _nothing_sent(sent: list[int]) -> None:
    """Nothing reaches the broker: the steps sent are recorded (`sent`)."""


@pytest.fixture
def ann(people):
    return program(people["ann"])


def test_a_workflow_is_submitted_and_read_back_with_its_steps_and_edges(
    ann, people, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = ann.post("/workflows", PIPELINE, **{"Idempotency-Key": "run-1"})
    assert response.status_code == 201, response.content
    body = response.json()
    workflow = Workflow.objects.get()
    assert response["Location"] == f"/api/v1/workflows/{workflow.pk}"
    assert (body["name"], body["size"], workflow.owner, body["url"]) == (
        "product, then its factors",
        3,
        people["ann"],
        f"/workflows/{workflow.pk}/",
    )
    assert [(s["step"], s["operation"], s["status"]) for s in body["steps"]] == [
        (1, "multiply", "queued"),
        (2, "factorize", "waiting"),
        (3, "sum", "waiting"),
    ]
    assert body["steps"][2]["inputs"] == {"values": [None, "0.5"]}
    assert body["edges"] == [
        {"source": 1, "target": 2, "input": "n"},
        {"source": 1, "target": 3, "input": "values"},
        {"source": 2, "target": 3, "input": None},
    ]
    assert body["counts"]["queued"] == 1 and body["counts"]["waiting"] == 2
    assert sent == [body["steps"][0]["id"]]
    entry = AuditEntry.objects.get(action=AuditEntry.Action.SUBMIT)
    assert entry.selection == {"workflow": workflow.pk} and entry.changed == 3 and entry.token_name == "script"

    again = ann.post("/workflows", PIPELINE, **{"Idempotency-Key": "run-1"})
    assert again.status_code == 201 and again.json()["id"] == workflow.pk
    assert Workflow.objects.count() == 1
    assert ann.get(f"/workflows/{workflow.pk}").json()["steps"][1]["workflow"] == workflow.pk


@pytest.mark.parametrize(
    ("steps", "pointer", "detail"),
    [
        (
            [
                {"operation": "add", "inputs": {"x": {"step": 2}, "y": 1}},
                {"operation": "add", "inputs": {"x": {"step": 1}, "y": 1}},
            ],
            "#/steps/0",
            "Step 1: This step depends on itself, through steps 2: a workflow cannot loop.",
        ),
        (
            [{"operation": "add", "inputs": {"x": {"step": 3}, "y": 1}}],
            "#/steps/0/inputs/x",
            "Step 1: x takes the result of step 3, which this workflow does not have.",
        ),
        (
            [
                {"operation": "factorize", "inputs": {"n": 12}},
                {"operation": "add", "inputs": {"x": {"step": 1}, "y": 1}},
            ],
            "#/steps/1/inputs/x",
            "Step 2: x takes a number; step 1's result (Factorize n into primes) is text.",
        ),
        (
            [{"operation": "count_primes", "inputs": {"n": 1.5}}],
            "#/steps/0/inputs/n",
            "Step 1: n takes whole numbers only.",
        ),
        (
            [{"operation": "divide", "inputs": {"x": 1, "y": 0}}],
            "#/steps/0/inputs/y",
            "Step 1: Division by zero is not possible.",
        ),
        (
            [{"operation": "add", "inputs": {"x": 1}}],
            "#/steps/0/inputs/y",
            "Step 1: y needs a value.",
        ),
        (
            [{"operation": "add", "inputs": {"x": 1, "y": 1}, "after": [1]}],
            "#/steps/0/after",
            "Step 1: It waits for step 1, which is not another step of this workflow.",
        ),
    ],
)
def test_a_workflow_that_cannot_run_is_refused_naming_the_step_and_input_and_writes_nothing(
    ann, steps, pointer, detail
):
    body = problem(ann.post("/workflows", {"steps": steps}), 422, "invalid")
    assert {"pointer": pointer, "detail": detail} in body["errors"], body["errors"]
    assert not Workflow.objects.exists() and not Computation.objects.exists()


def test_more_than_a_hundred_steps_are_refused_by_the_schema(ann):
    steps = [{"operation": "add", "inputs": {"x": 1, "y": 1}}] * 101
    body = problem(ann.post("/workflows", {"steps": steps}), 422, "invalid")
    assert body["errors"][0]["pointer"] == "#/steps"
    assert not Workflow.objects.exists()


def test_its_steps_count_against_the_queue_cap(ann, settings):
    settings.COMPUTATION_MAX_QUEUED = 2
    problem(ann.post("/workflows", PIPELINE), 503, "queue-full")
    assert not Workflow.objects.exists() and not Computation.objects.exists()


def test_a_workflow_is_cancelled_and_retried_whole(ann, people, sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        workflow_id = ann.post("/workflows", PIPELINE).json()["id"]
        cancelled = ann.post(f"/workflows/{workflow_id}/cancel")
    assert cancelled.json() == {"requested": 3, "changed": 3, "capped": False}
    assert set(Computation.objects.values_list("status", flat=True)) == {Status.CANCELLED}
    assert Workflow.objects.get().ended_at is not None
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        retried = ann.post(f"/workflows/{workflow_id}/retry")
    assert retried.json()["changed"] == 3
    statuses = dict(Computation.objects.values_list("step", "status"))
    assert statuses == {1: Status.QUEUED, 2: Status.WAITING, 3: Status.WAITING}, "those that take results wait again"
    assert sent == [Computation.objects.get(step=1).pk]
    assert Workflow.objects.get().ended_at is None

    bob = program(people["bob"])
    problem(bob.post(f"/workflows/{workflow_id}/cancel"), 404, "not-found")
    problem(bob.get(f"/workflows/{workflow_id}"), 404, "not-found")


def test_workflows_are_listed_newest_first_by_a_cursor_with_their_counts(ann, people):
    made = [ann.post("/workflows", {**PIPELINE, "name": f"run {n}"}).json()["id"] for n in range(3)]
    program(people["bob"]).post("/workflows", PIPELINE)
    first = ann.get("/workflows", limit=2).json()
    assert [item["id"] for item in first["items"]] == made[:0:-1]
    assert first["items"][0]["counts"]["queued"] == 1 and first["items"][0]["counts"]["waiting"] == 2
    assert "steps" not in first["items"][0], "a list names its workflows; each one's address has its steps"
    rest = ann.get(first["next"].removeprefix("/api/v1")).json()
    assert [item["id"] for item in rest["items"]] == [made[0]] and rest["next"] is None
