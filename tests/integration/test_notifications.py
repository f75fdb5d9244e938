"""Toasts for the computations this browser submitted, once they end, and the running count in the tab's title."""

import json
import uuid

import pytest
from django.test import Client, RequestFactory
from django.urls import reverse

from dashboard.computations import notifications
from tasks import changes
from tasks.models import Batch, Computation, Status, Workflow
from tests import factories
from tests.helpers import HTMX

pytestmark = pytest.mark.django_db


def submit(client: Client, **data: str) -> Computation:
    payload = {"operation": "add", "x": "1", "y": "2", "idempotency_key": str(uuid.uuid4()), **data}
    assert client.post(reverse("computations"), payload, **HTMX).status_code == 200
    return Computation.objects.latest("pk")


def poll(client: Client):
    return client.get(reverse("computations"), **HTMX)


def end(computation: Computation, status: str = Status.SUCCEEDED, **fields) -> None:
    Computation.objects.filter(pk=computation.pk).update(status=status, **fields)
    changes.record_change()


def test_a_submission_is_watched_in_a_signed_cookie(client):
    first, second = submit(client), submit(client)
    cookie = client.cookies[notifications.COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    request = RequestFactory().get("/")
    request.COOKIES[notifications.COOKIE] = cookie.value
    assert notifications.watched(request) == [f"c{first.pk}", f"c{second.pk}"]


def test_a_poll_announces_an_ending_then_the_toast_says_what_it_was(client):
    computation = submit(client)
    assert "HX-Trigger" not in poll(client), "nothing has ended yet"
    end(computation, result="3")
    assert json.loads(poll(client)["HX-Trigger"]) == {"computations-ended": {}}
    assert client.get(reverse("notifications")).status_code == 405, "a POST: showing them forgets them"
    toasts = client.post(reverse("notifications"), **HTMX)
    html = toasts.content.decode()
    assert f'<a href="/computations/{computation.pk}/">#{computation.pk}</a> Add succeeded: 3' in html
    assert '<dialog open class="toast toast-succeeded"' in html and '<form method="dialog">' in html
    assert notifications.COOKIE not in client.cookies or not client.cookies[notifications.COOKIE].value
    assert client.post(reverse("notifications"), **HTMX).content.decode().strip() == "", "shown once"
    end(computation, status=Status.SUCCEEDED)
    assert "HX-Trigger" not in poll(client), "no longer watched"


def test_failures_read_as_text_and_in_the_readers_language(client):
    computation = submit(client)
    end(computation, status=Status.FAILED, error="<script>alert(1)</script>")
    assert "computations-ended" in poll(client)["HX-Trigger"]
    html = client.post(reverse("notifications"), **HTMX).content.decode()
    assert "failed: &lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html


def test_a_forged_cookie_is_ignored(client):
    other = factories.computation(Status.SUCCEEDED, inputs={"x": "1", "y": "1"})
    client.cookies[notifications.COOKIE] = str(other.pk)
    assert "HX-Trigger" not in poll(client)
    assert client.post(reverse("notifications"), **HTMX).content.decode().strip() == ""


def test_the_tab_title_counts_what_runs():
    client = Client()
    assert poll(client).content.decode().lstrip().startswith("<title>Computations · Computation dashboard</title>")
    running = factories.computation(Status.RUNNING, inputs={"x": "1", "y": "1"})
    changes.record_change()
    assert (
        poll(client)
        .content.decode()
        .lstrip()
        .startswith("<title>(1 running) Computations · Computation dashboard</title>")
    )
    assert "<title>(1 running) Computations · Computation dashboard</title>" in client.get("/").content.decode()
    end(running)
    assert poll(client).content.decode().lstrip().startswith("<title>Computations · Computation dashboard</title>")


def test_a_batch_gets_one_toast_once_all_of_it_has_ended(client):
    data = {"operation": "add", "varied": "x", "start": "1", "stop": "3", "step": "1", "y": "1"}
    answer = client.post(reverse("batches"), {**data, "idempotency_key": str(uuid.uuid4())}, **HTMX)
    batch = Batch.objects.get()
    assert answer["HX-Redirect"] == batch.get_absolute_url()
    first, second, third = batch.computations.order_by("pk")
    end(first, result="2")
    end(second, status=Status.FAILED, error="x")
    assert "HX-Trigger" not in client.get(batch.get_absolute_url(), **HTMX), "one is still queued"
    end(third, result="4")
    assert json.loads(client.get(batch.get_absolute_url(), **HTMX)["HX-Trigger"]) == {"computations-ended": {}}
    html = client.post(reverse("notifications"), **HTMX).content.decode()
    assert (
        f'<a href="/batches/{batch.pk}/">Batch #{batch.pk}</a> Add has ended: 2 succeeded, 1 failed, 0 cancelled.'
        in html
    )
    assert html.count("<dialog") == 1, "the batch's computations get no toasts of their own"
    assert client.post(reverse("notifications"), **HTMX).content.decode().strip() == ""


def test_a_workflow_gets_one_toast_once_all_of_it_has_ended(client, sent, django_capture_on_commit_callbacks):
    steps = {
        "name": "",
        "steps": "2",
        "step-1-operation": "add",
        "step-1-x-source": "value",
        "step-1-x-value": "1",
        "step-1-y-source": "value",
        "step-1-y-value": "2",
        "step-2-operation": "add",
        "step-2-x-source": "1",
        "step-2-y-source": "value",
        "step-2-y-value": "3",
        "step-1-work_seconds": "0",
        "step-2-work_seconds": "0",
        "idempotency_key": str(uuid.uuid4()),
    }
    assert client.post(reverse("workflows"), steps, **HTMX).status_code == 200
    workflow = Workflow.objects.get()
    first, second = workflow.steps.order_by("step")
    with django_capture_on_commit_callbacks(execute=True):  # the ends settle the workflow once committed
        assert Computation.objects.filter(pk=first.pk).claim(worker="w")
        Computation.objects.filter(pk=first.pk).succeed(attempt=1, result="3")
    assert "HX-Trigger" not in poll(client), "a step ended, not the workflow"
    with django_capture_on_commit_callbacks(execute=True):
        Computation.objects.filter(pk=second.pk).cancel()
    assert json.loads(poll(client)["HX-Trigger"]) == {"computations-ended": {}}
    html = client.post(reverse("notifications"), **HTMX).content.decode()
    assert f'<a href="/workflows/{workflow.pk}/">Workflow #{workflow.pk}</a> has ended: 1 succeeded' in html
    assert "1 cancelled, 0 not run." in html and "toast-cancelled" in html
