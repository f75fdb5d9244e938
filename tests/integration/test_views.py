"""The dashboard through Django's test client, as a browser with and without htmx would use it."""

import json
import re
import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tasks import changes
from tasks.models import AuditEntry, Computation, Status
from tests import factories
from tests.helpers import HTMX

pytestmark = pytest.mark.django_db


def post(client: Client, data: dict, *, htmx: bool = True):
    return client.post(reverse("computations"), data, **(HTMX if htmx else {}))


def test_dashboard_shows_the_form_the_summary_and_the_list(client):
    factories.computation(Status.SUCCEEDED, result="3")
    factories.computation(Status.FAILED, error="Stopped")
    response = client.get(reverse("dashboard"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="computation-form"' in html and 'id="computation-list"' in html
    assert 'name="x"' in html and 'name="y"' in html
    assert '<option value="count_primes">Count primes below n</option>' in html
    assert "Succeeded <strong>1</strong>" in html and "Failed <strong>1</strong>" in html
    assert re.search(r'<script src="/static/django_htmx/htmx-2\.min\.[0-9a-f]{12}\.js"', html)
    assert 'hx-headers=\'{"X-CSRFToken": "' in html


def test_picking_an_operation_swaps_in_the_form_of_its_inputs(client):
    response = client.get(reverse("computation-new"), {"operation": "estimate_pi"}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="computation-form"')
    assert 'name="samples"' in html and 'name="seed"' in html and 'name="x"' not in html
    assert "<html" not in html


def test_picking_an_operation_without_script_gets_the_whole_page(client):
    response = client.get(reverse("computation-new"), {"operation": "factorize"})
    html = response.content.decode()
    assert "<html" in html and 'name="n"' in html and 'id="computation-list"' in html


def test_an_htmx_submission_records_a_queued_row_and_refreshes_the_list(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = post(client, {"operation": "divide", "x": "1", "y": "8", "work_seconds": "2"})
    assert response.status_code == 200
    assert json.loads(response["HX-Trigger"]) == {"computations-changed": {}}
    computation = Computation.objects.get()
    assert (computation.operation, computation.inputs, computation.work_seconds) == (
        "divide",
        {"x": "1", "y": "8"},
        2,
    )
    assert computation.status == Status.QUEUED and computation.attempts == 0
    assert len(callbacks) == 1, "the change is recorded and the task sent only once the row is committed"
    html = response.content.decode()
    assert f'href="/computations/{computation.pk}/"' in html
    assert '<option value="divide" selected>' in html, "the fresh form keeps the operation"


def test_a_plain_form_post_redirects_back_with_a_message(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        response = post(client, {"operation": "add", "x": "1", "y": "2"}, htmx=False)
    assert response.status_code == 303
    assert response["Location"] == "/"
    page = client.get("/").content.decode()
    assert f"Computation #{Computation.objects.get().pk} is queued." in page


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"operation": "add", "x": "1"}, "This field is required."),
        ({"operation": "add", "x": "one", "y": "2"}, "Enter a number."),
        ({"operation": "add", "x": "1e999", "y": "2"}, "Ensure that there are no more than"),
        ({"operation": "add", "x": "2000000000000", "y": "2"}, "less than or equal to 1000000000000"),
        ({"operation": "count_primes", "n": "0"}, "greater than or equal to 2"),
        ({"operation": "factorize", "n": "12.5"}, "Enter a whole number."),
        ({"operation": "format_disk", "x": "1", "y": "2"}, "Select a valid choice."),
        ({"operation": "divide", "x": "1", "y": "0"}, "Division by zero is not possible."),
        ({"operation": "add", "x": "1", "y": "2", "work_seconds": "3600"}, "less than or equal to 60"),
    ],
)
def test_invalid_input_gets_422_with_the_message_in_place_and_writes_nothing(client, data, message):
    version = changes.current_version()
    for htmx in (True, False):
        response = post(client, data, htmx=htmx)
        assert response.status_code == 422
        assert message in response.content.decode()
    assert not Computation.objects.exists()
    assert changes.current_version() == version


def test_hostile_values_are_shown_escaped(client):
    script = '<script>alert("x")</script>'
    response = post(client, {"operation": script, "x": script, "y": '"><img src=x onerror=alert(1)>'})
    html = response.content.decode()
    assert response.status_code == 422
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in html


def test_stored_results_and_errors_are_shown_escaped(client):
    failed = factories.computation(Status.FAILED, error='<script>alert("error")</script>')
    done = factories.computation(Status.SUCCEEDED, result='"><img src=x onerror=alert(1)>')
    pages = [client.get("/"), client.get(failed.get_absolute_url()), client.get(done.get_absolute_url())]
    for response in pages:
        html = response.content.decode()
        assert "<script>alert" not in html and "<img src=x" not in html
    # Escaped once, whichever engine wrote it (Django writes &quot;, Jinja2 &#34;).
    shown = pages[1].content.decode().replace("&#34;", "&quot;")
    assert "&lt;script&gt;alert(&quot;error&quot;)&lt;/script&gt;" in shown and "&amp;lt;" not in shown


def test_csrf_is_enforced_on_every_post():
    client = Client(enforce_csrf_checks=True)
    computation = factories.computation(Status.QUEUED)
    for url in (
        reverse("computations"),
        reverse("computation-cancel", args=[computation.pk]),
        reverse("computation-retry", args=[computation.pk]),
    ):
        response = client.post(url, {"operation": "add", "x": "1", "y": "2"}, **HTMX)
        assert response.status_code == 403, url
    assert Computation.objects.count() == 1
    assert Computation.objects.get().status == Status.QUEUED


def test_a_post_with_the_pages_token_is_accepted(django_capture_on_commit_callbacks):
    client = Client(enforce_csrf_checks=True)
    client.get("/")
    token = client.cookies["csrftoken"].value
    with django_capture_on_commit_callbacks():
        response = client.post(
            reverse("computations"), {"operation": "add", "x": "1", "y": "2"}, HTTP_X_CSRFTOKEN=token, **HTMX
        )
    assert response.status_code == 200
    assert Computation.objects.count() == 1


def test_no_get_changes_anything(client):
    queued, failed = factories.computation(Status.QUEUED), factories.computation(Status.FAILED, error="boom")
    before = list(Computation.objects.values().order_by("pk"))
    version = changes.current_version()
    urls = [
        "/",
        "/computations/",
        "/computations/?status=failed",
        "/computations/new/?operation=divide",
        queued.get_absolute_url(),
        reverse("api-computation", args=[queued.pk]),
        "/healthz",
        "/readyz",
    ]
    for url in urls:
        for headers in ({}, HTMX):
            assert client.get(url, **headers).status_code in (200, 286), url
    for action in ("computation-cancel", "computation-retry"):
        for computation in (queued, failed):
            assert client.get(reverse(action, args=[computation.pk])).status_code == 405
    assert client.get(reverse("computations"), {"operation": "add", "x": "1", "y": "2"}).status_code == 200
    assert list(Computation.objects.values().order_by("pk")) == before
    assert changes.current_version() == version


def test_detail_page_shows_everything_about_one_computation(client):
    computation = factories.computation(
        Status.SUCCEEDED,
        operation="factorize",
        inputs={"n": 360},
        result="2^3 × 3^2 × 5",
        attempts=1,
        worker="celery@host",
        work_seconds=3,
    )
    html = client.get(computation.get_absolute_url()).content.decode()
    for text in (
        f"#{computation.pk} Factorize n into primes",
        "n = 360",
        "2^3 × 3^2 × 5",
        "celery@host",
        str(computation.task_id),
        "3 seconds",
        "1 / 3",
    ):
        assert text in html
    assert client.get(reverse("computation-detail", args=[computation.pk + 1])).status_code == 404


def test_the_json_api_gives_one_computation(client):
    computation = factories.computation(Status.RUNNING, progress=40, attempts=1)
    data = client.get(reverse("api-computation", args=[computation.pk])).json()
    assert data["id"] == computation.pk and data["status"] == "running" and data["progress"] == 40
    assert data["inputs"] == {"x": "1", "y": "2"} and data["result"] is None
    assert uuid.UUID(data["task_id"]) == computation.task_id
    missing = client.get(reverse("api-computation", args=[computation.pk + 1]))
    assert missing.status_code == 404 and missing.json() == {"error": "No computation has this id."}


def test_cancel_from_the_list_answers_a_notice_and_refreshes(client):
    computation = factories.computation(Status.QUEUED)
    response = client.post(reverse("computation-cancel", args=[computation.pk]), **HTMX)
    assert response.status_code == 200
    assert f"Computation #{computation.pk} is cancelled." in response.content.decode()
    assert "computations-changed" in response["HX-Trigger"]
    computation.refresh_from_db()
    assert computation.status == Status.CANCELLED and computation.finished_at is not None

    again = client.post(reverse("computation-cancel", args=[computation.pk]), **HTMX)
    assert again.status_code == 409
    assert "already ended" in again.content.decode()


def test_retry_queues_a_failed_computation_again(client, django_capture_on_commit_callbacks):
    computation = factories.computation(Status.FAILED, error="boom", attempts=3, max_attempts=3)
    old_task = computation.task_id
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(reverse("computation-retry", args=[computation.pk]), **HTMX)
    assert response.status_code == 200
    assert len(callbacks) == 3, "after the commit: the change recorded, the new task sent, the audit recorded"
    computation.refresh_from_db()
    assert computation.status == Status.QUEUED and computation.error == ""
    assert computation.task_id != old_task and computation.max_attempts == 6

    assert client.post(reverse("computation-retry", args=[computation.pk]), **HTMX).status_code == 409


def test_actions_without_script_redirect_to_a_safe_next(client):
    computation = factories.computation(Status.QUEUED)
    response = client.post(reverse("computation-cancel", args=[computation.pk]), {"next": "/?status=queued"})
    assert response.status_code == 303 and response["Location"] == "/?status=queued"
    elsewhere = client.post(reverse("computation-retry", args=[computation.pk]), {"next": "https://evil.example/"})
    assert elsewhere.status_code == 303 and elsewhere["Location"] == computation.get_absolute_url()


def test_actions_on_a_missing_computation_are_404(client):
    assert client.post(reverse("computation-cancel", args=[999999]), **HTMX).status_code == 404
    assert client.post(reverse("computation-retry", args=[999999])).status_code == 404


def test_health_and_readiness(client):
    assert client.get("/healthz").content == b"ok\n"
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "broker": "ok", "cache": "ok"}


def test_pages_carry_a_strict_content_security_policy(client):
    response = client.get("/")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert '"allowEval": false' in response.content.decode()


def test_counts_by_status_stop_at_their_cap(client, settings):
    Computation.objects.bulk_create(
        [Computation(operation="add", inputs={"x": "1", "y": "1"}, status=Status.SUCCEEDED) for _ in range(4)]
        + [Computation(operation="add", inputs={"x": "1", "y": "1"}, status=Status.FAILED)]
    )
    counts = Computation.objects.status_counts(cap=3)
    assert [counts[status] for status in Status] == [0, 0, 0, 4, 1, 0, 0]
    assert (counts.in_flight, counts.ended, counts.retryable) == (0, 5, 1)
    assert Computation.objects.filter(operation="divide").status_counts(cap=3)["succeeded"] == 0
    html = client.get("/").content.decode()
    assert "Succeeded <strong>4</strong>" in html


def test_the_list_escapes_what_a_row_holds_in_the_page_and_in_its_partial(client):
    # The list is a Jinja2 template the page shows as HTML: escaped once, in both.
    factories.computation(Status.FAILED, error='<script>alert("x")</script>')
    for headers in ({}, HTMX):
        html = client.get(reverse("computations"), **headers).content.decode()
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html, html
        assert "<script>alert" not in html and "&amp;lt;" not in html


def test_without_script_every_form_of_a_page_carries_a_token_that_works():
    client = Client(enforce_csrf_checks=True)
    queued = factories.computation(Status.QUEUED)
    factories.computation(Status.FAILED, error="Stopped")
    for url in (reverse("dashboard"), queued.get_absolute_url()):
        html = client.get(url).content.decode()
        forms = re.findall(r'<form method="post" action="([^"]+)"(.*?)</form>', html, re.DOTALL)
        assert forms, url
        for action, body in forms:
            assert 'name="csrfmiddlewaretoken"' in body, (url, action)
    html = client.get(reverse("dashboard")).content.decode()
    cancel = reverse("computation-cancel", args=[queued.pk])
    body = re.search(rf'<form method="post" action="{cancel}"(.*?)</form>', html, re.DOTALL).group(1)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', body).group(1)
    answer = client.post(cancel, {"csrfmiddlewaretoken": token, "next": "/"})
    assert answer.status_code == 303
    assert Computation.objects.get(pk=queued.pk).status == Status.CANCELLED


def test_a_computations_page_is_its_timeline(client):
    """Submitted, started (which attempt, on which worker, after how long waiting), ended (after how long running),
    and the people's actions in their places."""
    start = timezone.now() - timedelta(minutes=5)
    computation = factories.computation(
        Status.SUCCEEDED,
        result="3",
        created_at=start,
        enqueued_at=start,
        started_at=start + timedelta(seconds=2),
        finished_at=start + timedelta(seconds=5),
        worker="worker@host",
        attempts=2,
    )
    entry = AuditEntry.objects.create(
        action=AuditEntry.Action.RETRY,
        source=AuditEntry.Source.API,
        selection={"ids": [computation.pk]},
        requested=1,
        changed=1,
        created_at=start + timedelta(seconds=1),
    )
    entry.computations.add(computation)
    html = client.get(computation.get_absolute_url()).content.decode()
    steps = re.findall(r'<li class="step step-(\w+)">', html)
    assert steps == ["queued", "audit", "running", "succeeded"]
    assert "Retry, API" in html
    assert "attempt 2 of 3, on worker@host" in html
    assert "waited 1.0 s" in html and "ran 3.0 s" in html
