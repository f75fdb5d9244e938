"""A workflow's page: its graph and the table of the same steps, live until all have ended, with cancel and retry of
the whole; its one row in the main list, which opens to its steps; and a step's own page, which names its workflow."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from tasks.models import AuditEntry, Computation, Status, Workflow
from tasks.operations import OperationError
from tasks.workflows import plan, recording
from tests import factories
from tests.helpers import HTMX

pytestmark = pytest.mark.django_db(transaction=True)


def diamond(**fields) -> Workflow:
    """1 → 2, 1 → 3, (2, 3) → 4, and 5 waits for 4 without taking its result."""
    return recording.submit(
        plan.plan(
            [
                {"operation": "add", "inputs": {"x": 1, "y": 2}},
                {"operation": "multiply", "inputs": {"x": {"step": 1}, "y": 10}},
                {"operation": "multiply", "inputs": {"x": {"step": 1}, "y": 100}},
                {"operation": "sum", "inputs": {"values": [{"step": 2}, {"step": 3}, 1]}},
                {"operation": "add", "inputs": {"x": 5, "y": 5}, "after": [4]},
            ],
            name="Diamond",
        ),
        **fields,
    )


def steps_of(workflow: Workflow) -> dict[int, Computation]:
    return {step.step: step for step in workflow.steps.all()}


def succeed(step: Computation, result: str) -> None:
    """What a worker does: claim the step, then record its result (its end settles the workflow)."""
    rows = Computation.objects.filter(pk=step.pk)
    assert rows.claim(worker="test")
    assert rows.succeed(attempt=1, result=result)


def fail(step: Computation) -> None:
    rows = Computation.objects.filter(pk=step.pk)
    assert rows.claim(worker="test")
    assert rows.fail(attempt=1, error=OperationError("It broke."))


def table_row(html: str, workflow: Workflow, number: int) -> str:
    found = re.search(rf'<tr id="step-{workflow.pk}-{number}".*?</tr>', html, re.S)
    assert found, f"no row for step {number}"
    return found[0]


@pytest.mark.usefixtures("sent")
def test_the_page_draws_the_steps_and_tables_the_same_steps_with_their_wiring(client):
    workflow = diamond()
    steps = steps_of(workflow)
    html = client.get(workflow.get_absolute_url()).content.decode()
    assert f"Workflow #{workflow.pk}: Diamond" in html and "0 of 5 ended" in html
    svg = html[html.index('<svg class="workflow-graph"') : html.index("</svg>")]
    for number, step in steps.items():
        assert svg.count(f'<a href="/computations/{step.pk}/"') == 1, number
        assert f"#{number} " in svg
    assert svg.count('<path class="edge"') == 4 and svg.count('<path class="edge edge-wait"') == 1
    assert html.count(f'<tr id="step-{workflow.pk}-') == 5
    assert "x = result of step 1 · y = 10" in table_row(html, workflow, 2)
    assert "result of step 2, result of step 3, 1" in table_row(html, workflow, 4)
    assert "Waits for step 4" in table_row(html, workflow, 5)
    assert f'href="/computations/{steps[3].pk}/">#{steps[3].pk}</a>' in table_row(html, workflow, 3)
    assert ">Queued<" in table_row(html, workflow, 1) and ">Waiting<" in table_row(html, workflow, 2)

    succeed(steps[1], "3")
    html = client.get(workflow.get_absolute_url()).content.decode()
    assert "x = result of step 1 (3) · y = 10" in table_row(html, workflow, 2)
    assert ">Succeeded<" in table_row(html, workflow, 1) and ">Queued<" in table_row(html, workflow, 2)
    assert "1 of 5 ended" in html


@pytest.mark.usefixtures("sent")
def test_statuses_show_with_each_steps_own_cancel_or_retry(client):
    workflow = diamond()
    steps = steps_of(workflow)
    succeed(steps[1], "3")
    fail(steps[2])
    html = client.get(workflow.get_absolute_url()).content.decode()
    failed, queued, not_run = (table_row(html, workflow, n) for n in (2, 3, 4))
    assert ">Failed<" in failed and "It broke." in failed
    assert f'action="/computations/{steps[2].pk}/retry/"' in failed and 'name="csrfmiddlewaretoken"' in failed
    assert ">Queued<" in queued and f'action="/computations/{steps[3].pk}/cancel/"' in queued
    assert ">Not run<" in not_run and "Not run: step 2, which it depends on, failed." in not_run
    assert "/retry/" not in not_run and "/cancel/" not in not_run, "a step not run comes back with the retry of step 2"
    assert 'class="step status-failed"' in html and 'class="step status-not_run"' in html
    assert "Cancel the workflow" in html and "Retry its failed and cancelled steps" in html


def poll(client, url, etag=None):
    return client.get(url, **HTMX, **({"HTTP_IF_NONE_MATCH": etag} if etag else {}))


@pytest.mark.usefixtures("sent")
def test_the_section_polls_answers_304_when_unchanged_and_286_once_all_have_ended(client):
    workflow = diamond()
    url = workflow.get_absolute_url()
    first = poll(client, url)
    assert first.status_code == 200
    assert 'hx-trigger="every 1s, computations-changed from:body"' in first.content.decode()
    assert "<html" not in first.content.decode(), "the section alone"
    assert poll(client, url, first["ETag"]).status_code == 304

    steps = steps_of(workflow)
    succeed(steps[1], "3")
    moved = poll(client, url, first["ETag"])
    assert moved.status_code == 200 and "1 of 5 ended" in moved.content.decode()
    for number, result in ((2, "30"), (3, "300"), (4, "331"), (5, "10")):
        succeed(Computation.objects.get(pk=steps[number].pk), result)
    done = poll(client, url, moved["ETag"])
    html = done.content.decode()
    assert done.status_code == 286 and "5 of 5 ended" in html
    assert "every 1s" not in html and 'hx-trigger="computations-changed from:body"' in html
    assert "Cancel the workflow" not in html and "Retry its" not in html


def test_the_whole_workflow_is_cancelled_and_retried_from_its_page(sent):
    workflow = diamond()
    steps = steps_of(workflow)
    browser = Client(enforce_csrf_checks=True)
    url = workflow.get_absolute_url()
    assert "Cancel the workflow" in browser.get(url).content.decode()
    token = browser.cookies["csrftoken"].value
    assert browser.post(reverse("workflow-cancel", args=[workflow.pk]), **HTMX).status_code == 403, "no token"
    assert Computation.objects.filter(workflow=workflow, status=Status.CANCELLED).count() == 0

    cancelled = browser.post(reverse("workflow-cancel", args=[workflow.pk]), {"csrfmiddlewaretoken": token}, **HTMX)
    assert cancelled.status_code == 200 and "5 steps of the workflow cancelled." in cancelled.content.decode()
    assert set(workflow.steps.values_list("status", flat=True)) == {Status.CANCELLED}
    workflow.refresh_from_db()
    assert workflow.ended_at is not None
    html = browser.get(url).content.decode()
    assert "Cancel the workflow" not in html and "Retry its failed and cancelled steps" in html

    sent.clear()
    retried = browser.post(reverse("workflow-retry", args=[workflow.pk]), {"csrfmiddlewaretoken": token})
    assert retried.status_code == 303 and retried["Location"] == url
    after = steps_of(workflow)
    # The first step is queued and sent; the others wait again for the steps they depend on.
    assert [after[n].status for n in (1, 2, 3, 4, 5)] == [Status.QUEUED] + [Status.WAITING] * 4
    assert sent == [steps[1].pk]
    assert "5 steps of the workflow retried." in browser.get(url).content.decode()
    assert [entry.selection for entry in AuditEntry.objects.order_by("pk")] == [
        {"filter": {"workflow": workflow.pk}}
    ] * 2


@pytest.mark.usefixtures("accounts_on", "sent")
def test_another_persons_workflow_is_not_found(people):
    ann, bob = factories.signed_in(people["ann"]), factories.signed_in(people["bob"])
    workflow = diamond(owner=people["ann"])
    for url in (workflow.get_absolute_url(), reverse("workflow-steps", args=[workflow.pk])):
        assert bob.get(url).status_code == 404 and ann.get(url).status_code == 200
    for name in ("workflow-cancel", "workflow-retry"):
        assert bob.post(reverse(name, args=[workflow.pk]), **HTMX).status_code == 404
    assert not workflow.steps.filter(status=Status.CANCELLED).exists()
    assert workflow.pk and f"Workflow #{workflow.pk}" not in bob.get(reverse("computations"), **HTMX).content.decode()


@pytest.mark.usefixtures("sent")
def test_the_main_list_shows_a_workflow_as_one_row_that_opens_to_its_steps(client):
    workflow = diamond()
    steps = steps_of(workflow)
    alone = factories.computation(inputs={"x": "9", "y": "9"})
    fail(steps[1])
    html = client.get(reverse("computations"), **HTMX).content.decode()
    assert html.count('<tr id="workflow-') == 1 and html.count('<details id="workflow-details-') == 1
    assert f'id="computation-{alone.pk}"' in html
    assert not any(f'id="computation-{step.pk}"' in html for step in steps.values())
    row = re.search(rf'<tr id="workflow-{workflow.pk}".*?</tr>', html, re.S)[0]
    assert f'href="{workflow.get_absolute_url()}">Workflow #{workflow.pk}</a>' in row
    assert "Diamond (5 steps)" in row and "5 / 5 · 1 failed · 4 not run" in row
    assert f'hx-get="{reverse("workflow-steps", args=[workflow.pk])}"' in html

    opened = client.get(reverse("workflow-steps", args=[workflow.pk]), **HTMX).content.decode()
    assert opened.count(f'<tr id="step-{workflow.pk}-') == 5 and "result of step 2, result of step 3, 1" in opened
    assert "<svg" not in opened and 'id="action-' not in opened, "the list's row shows the steps, not their buttons"
    assert "All the steps" not in opened

    filtered = client.get(reverse("computations"), {"status": "not_run"}, **HTMX).content.decode()
    assert filtered.count('<tr id="computation-') == 4 and '<tr id="workflow-' not in filtered


@pytest.mark.usefixtures("sent")
def test_a_long_workflows_row_opens_to_its_first_steps_and_links_the_rest(client):
    chain = [{"operation": "add", "inputs": {"x": 1, "y": 1}}] + [
        {"operation": "add", "inputs": {"x": {"step": n}, "y": 1}} for n in range(1, 12)
    ]
    workflow = recording.submit(plan.plan(chain))
    opened = client.get(reverse("workflow-steps", args=[workflow.pk]), **HTMX).content.decode()
    assert opened.count(f'<tr id="step-{workflow.pk}-') == 10
    assert f'<a href="{workflow.get_absolute_url()}">All the steps' in opened
    page = client.get(workflow.get_absolute_url()).content.decode()
    assert f"Workflow #{workflow.pk}: 12 steps" in page and page.count(f'<tr id="step-{workflow.pk}-') == 12


@pytest.mark.usefixtures("sent")
def test_a_steps_page_links_to_its_workflow(client):
    workflow = diamond()
    step = steps_of(workflow)[2]
    html = client.get(step.get_absolute_url()).content.decode()
    assert f'<a href="{workflow.get_absolute_url()}">Step 2 of workflow #{workflow.pk}</a>' in html
    alone = factories.computation()
    assert "of workflow #" not in client.get(alone.get_absolute_url()).content.decode()
