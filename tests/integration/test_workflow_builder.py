"""The workflow builder: a form of steps drawn again with its graph on every change, checked whole by the workflow's
plan when it is posted, and written as one workflow; and a batch whose results are combined, which is a workflow."""

import html
import re
import uuid

import pytest
from django.test import Client
from django.urls import reverse

from tasks.models import Batch, Computation, Status, Workflow, WorkflowEdge
from tests.helpers import HTMX

pytestmark = pytest.mark.django_db

NEW, PREVIEW, CREATE = reverse("workflow-new"), reverse("workflow-preview"), reverse("workflows")


@pytest.fixture(autouse=True)
def _nothing_sent(sent: list[int]) -> None:
    """Nothing reaches the broker: the steps sent are recorded (`sent`)."""


def value(name: str, given: str) -> dict[str, str]:
    return {f"{name}-source": "value", f"{name}-value": given}


def result(name: str, step: int) -> dict[str, str]:
    return {f"{name}-source": str(step)}


def builder(*steps: dict[str, object], **fields: object) -> dict[str, object]:
    """The builder's fields as the browser posts them, for steps written without their "step-N-" prefix."""
    data = {"steps": str(len(steps)), "name": "", "idempotency_key": str(uuid.uuid4()), **fields}
    for number, step in enumerate(steps, start=1):
        data |= {f"step-{number}-{key}": given for key, given in {"work_seconds": "0", **step}.items()}
    return data


def add(x: str = "1", y: str = "2") -> dict[str, str]:
    return {"operation": "add", **value("x", x), **value("y", y)}


def three_steps(**fields: object) -> dict[str, object]:
    """Multiply 6 by 7; factorize its result; the sum of its result and 10, once the factorization has ended."""
    return builder(
        {"operation": "multiply", **value("x", "6"), **value("y", "7")},
        {"operation": "factorize", **result("n", 1)},
        {"operation": "sum", "values-steps": ["1"], "values-extra": "10", "after": ["2"]},
        **fields,
    )


def text(response) -> str:
    return html.unescape(response.content.decode())


def between(page: str, start: str, end: str) -> str:
    """The part of the page from `start` to `end`: where a message stands."""
    first = page.index(start)
    return page[first : page.index(end, first)]


def nothing_written() -> bool:
    return not (Workflow.objects.exists() or Computation.objects.exists() or WorkflowEdge.objects.exists())


def test_the_builder_starts_with_one_step_and_its_graph(client):
    page = text(client.get(NEW))
    assert "<html" in page and 'id="workflow-builder"' in page
    assert '<option value="add" selected>Add</option>' in page and 'name="steps" value="1"' in page
    assert re.search(r'name="idempotency_key" value="[0-9a-f-]{36}"', page)
    assert page.count('<rect class="step') == 1 and "#1 Add" in page
    assert "Remove step 1</button>" in page and re.search(r'value="remove-1"[^>]* disabled>', page), "the only step"
    fragment = text(client.get(NEW, **HTMX))
    assert fragment.lstrip().startswith('<div id="workflow-builder"') and "<html" not in fragment


def test_the_dashboard_links_to_the_builder(client):
    page = client.get(reverse("dashboard")).content.decode()
    assert f'href="{NEW}">Build a workflow</a>' in page


def test_adding_a_step_draws_it_and_gives_its_operation_the_focus(client):
    response = client.post(PREVIEW, {**builder(add()), "do": "add"}, **HTMX)
    page = text(response)
    assert response.status_code == 200 and "<html" not in page
    assert 'name="steps" value="2"' in page and page.count('<rect class="step') == 2
    assert re.search(r'<select name="step-2-operation" id="id_step-2-operation" autofocus>', page)
    assert 'class="errorlist"' not in page, "a step just added has not been filled: no messages yet"
    assert nothing_written()


def test_the_graph_draws_each_link_and_removing_a_step_renumbers_the_rest(client):
    data = builder(add(), {"operation": "multiply", **result("x", 1), **value("y", "3")}, {**add(), **result("y", 2)})
    page = text(client.post(PREVIEW, data, **HTMX))
    assert page.count('<rect class="step') == 3 and page.count('<path class="edge"') == 2
    assert 'class="errorlist"' not in page, "a valid workflow"

    page = text(client.post(PREVIEW, {**data, "do": "remove-2"}, **HTMX))
    assert 'name="steps" value="2"' in page and page.count('<rect class="step') == 2
    assert '<path class="edge"' not in page, "what took step 2's result takes a value again"
    assert "hx-preserve" not in page, "the fields moved: the page takes them as answered"
    step_2 = between(page, 'id="step-2"', "</fieldset>\n    \n    <div")
    assert '<option value="value" selected>Value</option>' in between(step_2, 'name="step-2-y-source"', "</select>")
    assert 'name="step-2-x-value" id="id_step-2-x-value"' in step_2 and 'value="1"' in step_2
    assert re.search(r'id="id_step-2-operation" autofocus>', page)


def test_the_preview_without_script_is_the_whole_page(client):
    page = text(client.post(PREVIEW, {**builder(add()), "do": "add"}))
    assert "<html" in page and 'name="steps" value="2"' in page and 'formaction="/workflows/new/preview/"' in page


def test_the_preview_shows_what_is_wrong_where_and_writes_nothing(client):
    data = builder({"operation": "add", **value("x", ""), **value("y", "1")})
    page = text(client.post(PREVIEW, data, **HTMX))
    assert '<ul class="errorlist" id="step-1-x_error"><li>x needs a value.</li></ul>' in page
    assert (
        'id="id_step-1-y-value" step="any" min="-1000000000000" max="1000000000000" inputmode="decimal" hx-preserve'
        in page
    ), "what was typed while the preview was on its way stays"
    assert nothing_written()


def test_a_result_of_text_is_offered_only_where_it_is_chosen(client):
    data = builder({"operation": "factorize", **value("n", "12")}, add(), {"operation": "sum", "values-extra": "1"})
    page = text(client.post(PREVIEW, data, **HTMX))
    step_2 = between(page, 'name="step-2-x-source"', "</select>")
    assert "Result of step 3" in step_2 and "Result of step 1" not in step_2
    step_3 = between(page, 'id="step-3"', 'name="step-3-values-extra"')
    assert "Result of step 2" in step_3 and "Result of step 1" not in step_3


def test_the_last_step_there_may_be_cannot_be_added_to(client):
    page = text(client.post(PREVIEW, builder(*[add()] * 100), **HTMX))
    assert re.search(r'value="add"[^>]* disabled aria-describedby="workflow-full">Add a step', page)
    assert "A workflow takes at most 100 steps." in page


@pytest.mark.parametrize("htmx", [True, False])
def test_a_valid_workflow_is_written_with_its_edges_and_shown(client, django_capture_on_commit_callbacks, sent, htmx):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(CREATE, three_steps(name="Answer"), **(HTMX if htmx else {}))
    workflow = Workflow.objects.get()
    if htmx:
        assert response.status_code == 200 and response["HX-Redirect"] == workflow.get_absolute_url()
    else:
        assert response.status_code == 303 and response["Location"] == workflow.get_absolute_url()
    assert (workflow.name, workflow.size) == ("Answer", 3)
    steps = {step.step: step for step in workflow.steps.all()}
    assert [steps[n].operation for n in (1, 2, 3)] == ["multiply", "factorize", "sum"]
    assert steps[1].inputs == {"x": "6", "y": "7"} and steps[3].inputs == {"values": [None, "10"]}
    assert sorted(workflow.edges.values_list("source", "target", "input", "position")) == [
        (1, 2, "n", None),
        (1, 3, "values", 0),
        (2, 3, "", None),
    ]
    assert [steps[n].status for n in (1, 2, 3)] == [Status.QUEUED, Status.WAITING, Status.WAITING]
    assert sent == [steps[1].pk], "only the step that waits for none"
    assert "dashboard_watching" in response.cookies, "its end is announced, as a computation's"


@pytest.mark.parametrize(
    ("steps", "where", "message"),
    [
        (
            [{**add(), **result("x", 2)}, {**add(), **result("y", 1)}],
            ('id="step-1_error"', "</ul>"),
            "This step depends on itself, through steps 2: a workflow cannot loop.",
        ),
        (
            [{"operation": "factorize", **value("n", "12")}, {**add(), **result("x", 1)}],
            ('id="step-2-x_error"', "</ul>"),
            "x takes a number; step 1's result (Factorize n into primes) is text.",
        ),
        ([add(), {**add(), **value("y", "")}], ('id="step-2-y_error"', "</ul>"), "y needs a value."),
    ],
    ids=["cycle", "text-into-a-number", "missing-input"],
)
def test_a_workflow_that_cannot_run_is_refused_with_the_reason_beside_its_step_and_input(client, steps, where, message):
    response = client.post(CREATE, builder(*steps), **HTMX)
    page = text(response)
    assert response.status_code == 422 and page.lstrip().startswith('<div id="workflow-builder"')
    assert message in between(page, *where)
    assert nothing_written()


def test_more_than_a_hundred_steps_are_refused(client):
    response = client.post(CREATE, builder(*[add()] * 101), **HTMX)
    assert response.status_code == 422
    assert "A workflow takes at most 100 steps; this one has 101." in text(response)
    assert nothing_written()


def test_a_workflow_posted_twice_is_made_once(client, django_capture_on_commit_callbacks):
    data = three_steps()
    with django_capture_on_commit_callbacks(execute=True):
        first, second = client.post(CREATE, data, **HTMX), client.post(CREATE, data, **HTMX)
    assert first["HX-Redirect"] == second["HX-Redirect"]
    assert Workflow.objects.count() == 1 and Computation.objects.count() == 3


def test_the_builder_spends_the_submission_limit_by_its_steps(settings, django_capture_on_commit_callbacks):
    settings.SUBMISSION_RATE_LIMIT = "5/h"
    client = Client(REMOTE_ADDR="198.51.100.32")
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(CREATE, three_steps(), **HTMX).status_code == 200
        refused = client.post(CREATE, three_steps(), **HTMX)
        assert refused.status_code == 429 and "Too many submissions" in text(refused)
        assert int(refused["Retry-After"]) >= 1
        assert client.post(CREATE, builder(add(), add()), **HTMX).status_code == 200, "two more fit"
    assert list(Workflow.objects.order_by("pk").values_list("size", flat=True)) == [3, 2]


def test_a_workflow_that_does_not_fit_the_queue_is_refused_with_the_room_there_is(client, settings):
    settings.COMPUTATION_MAX_QUEUED = 2
    refused = client.post(CREATE, three_steps(), **HTMX)
    assert refused.status_code == 503 and "room for 2 more computations and this would add 3" in text(refused)
    assert 'id="workflow-builder"' in text(refused) and nothing_written()


def post_range(client: Client, **data: str):
    fields = {"operation": "multiply", "varied": "y", "start": "1", "stop": "5", "step": "1", "x": "2", **data}
    return client.post(reverse("batches"), fields, **HTMX)


def test_a_range_whose_results_are_combined_is_a_workflow_of_a_step_per_value_and_one_more(
    client, django_capture_on_commit_callbacks, sent
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post_range(client, combine="sum")
    workflow = Workflow.objects.get()
    assert response.status_code == 200 and response["HX-Redirect"] == workflow.get_absolute_url()
    assert not Batch.objects.exists() and workflow.size == 6
    assert workflow.name == "Sum of values: Multiply, y = 1 … 5, step 1"
    steps = list(workflow.steps.order_by("step"))
    assert [(s.operation, s.inputs) for s in steps[:5]] == [("multiply", {"x": "2", "y": str(y)}) for y in range(1, 6)]
    assert (steps[5].operation, steps[5].inputs, steps[5].status) == ("sum", {"values": [None] * 5}, Status.WAITING)
    assert sorted(workflow.edges.values_list("source", "target", "input", "position")) == [
        (n, 6, "values", n - 1) for n in range(1, 6)
    ]
    assert sorted(sent) == [step.pk for step in steps[:5]]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"stop": "150"}, "This range has 150 values; combined, a range takes at most 99"),
        (
            {"operation": "factorize", "varied": "n", "start": "2", "stop": "4"},
            "Factorize n into primes gives text, which cannot be combined",
        ),
    ],
)
def test_a_range_that_cannot_be_combined_is_refused_with_the_reason(client, data, message):
    response = post_range(client, combine="maximum", **data)
    assert response.status_code == 422 and message in text(response)
    assert nothing_written() and not Batch.objects.exists()


def test_the_batch_form_offers_to_combine_the_results(client):
    page = text(client.get(reverse("batch-new")))
    choices = between(page, 'name="combine"', "</select>")
    assert re.findall(r'<option value="(\w*)"', choices) == ["", "sum", "minimum", "maximum"]
    assert '<option value="" selected>No</option>' in choices
