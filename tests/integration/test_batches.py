"""Batches: one operation over a range of one input's values, written in one transaction, shown as one row of
the list and on a live page of their own."""

from decimal import Decimal

import pytest
from django.urls import reverse

from tasks import services
from tasks.models import AuditEntry, Batch, Computation, InputValue, Status
from tasks.operations import REGISTRY
from tests import factories
from tests.helpers import HTMX, wait_for


def post_batch(client, **data):
    fields = {"operation": "divide", "varied": "y", "start": "1", "stop": "4", "step": "1", "x": "12", **data}
    return client.post(reverse("batches"), fields, **HTMX)


@pytest.mark.django_db
def test_a_batch_is_one_row_and_a_computation_per_value(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = post_batch(client)
    batch = Batch.objects.get()
    assert response.status_code == 200 and response["HX-Redirect"] == batch.get_absolute_url()
    assert (batch.operation, batch.varied, batch.size, batch.fixed_inputs) == ("divide", "y", 4, {"x": "12"})
    members = list(batch.computations.order_by("pk"))
    assert [m.inputs for m in members] == [{"x": "12", "y": str(y)} for y in (1, 2, 3, 4)]
    assert [m.in_main_list for m in members] == [True, False, False, False]
    assert len(callbacks) == 1, "after the commit, in one go: the change recorded, the four tasks sent"
    assert all(m.enqueued_at is not None for m in members)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"start": "-1", "stop": "1"}, "y = 0: Division by zero is not possible."),
        ({"stop": "2000"}, "This range has 2000 values; a batch takes at most 1000."),
        ({"step": "0"}, "The step must be greater than zero."),
        ({"start": "5", "stop": "1"}, "The range must end at or after its start."),
        ({"x": ""}, "This field is required."),
        ({"operation": "count_primes", "varied": "n", "start": "1.5", "stop": "3"}, "n takes whole numbers only."),
        ({"operation": "count_primes", "varied": "n", "start": "0", "stop": "3"}, "must lie between 2 and"),
    ],
)
def test_a_range_that_cannot_run_is_refused_with_the_reason_and_writes_nothing(client, data, message):
    response = post_batch(client, **data)
    assert response.status_code == 422
    assert message in response.content.decode()
    assert not Batch.objects.exists() and not Computation.objects.exists()


@pytest.mark.django_db
def test_a_batch_posted_twice_is_made_once(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        first = post_batch(client, idempotency_key="6f2d8c52-7d8a-4bd0-9a3e-2b0f5a4d1c10")
        second = post_batch(client, idempotency_key="6f2d8c52-7d8a-4bd0-9a3e-2b0f5a4d1c10")
    assert first["HX-Redirect"] == second["HX-Redirect"]
    assert Batch.objects.count() == 1 and Computation.objects.count() == 4


@pytest.mark.django_db
def test_a_thousand_values_are_written_in_a_few_statements(
    django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    """Bulk inserts, never a statement per value (`make bench` times the batch's POST: a timed test here would only
    measure how busy the machine is)."""
    with django_capture_on_commit_callbacks(), django_assert_max_num_queries(12):
        batch = services.submit_batch(
            operation=REGISTRY["add"],
            varied="x",
            start=Decimal(1),
            stop=Decimal(1000),
            step=Decimal(1),
            fixed={"y": Decimal(1)},
        )
    assert batch.computations.count() == 1000
    assert InputValue.objects.filter(computation__batch=batch).count() == 1999  # x = 1, y = 1: one value


@pytest.mark.django_db
def test_the_main_list_shows_a_batch_as_one_row_and_a_filter_shows_its_computations(client):
    batch = services.submit_batch(
        operation=REGISTRY["add"],
        varied="x",
        start=Decimal(1),
        stop=Decimal(3),
        step=Decimal(1),
        fixed={"y": Decimal(1)},
    )
    alone = factories.computation(inputs={"x": "9", "y": "9"})
    html = client.get(reverse("computations"), **HTMX).content.decode()
    assert html.count('<tr id="batch-') == 1 and html.count('<details id="batch-details-') == 1
    assert f'href="{batch.get_absolute_url()}"' in html and f'id="computation-{alone.pk}"' in html
    assert "x = 1 … 3, step 1; y = 1" in html and "0 / 3" in html
    filtered = client.get(reverse("computations"), {"status": "queued"}, **HTMX).content.decode()
    assert filtered.count('<tr id="computation-') == 4


@pytest.mark.django_db(transaction=True)
def test_the_batch_page_shows_progress_and_polls_until_all_have_ended(client):
    batch = services.submit_batch(
        operation=REGISTRY["multiply"],
        varied="y",
        start=Decimal("0.5"),
        stop=Decimal("1.5"),
        step=Decimal("0.5"),
        fixed={"x": Decimal(2)},
    )
    page = client.get(batch.get_absolute_url(), **HTMX)
    assert page.status_code == 200 and "0 of 3 ended" in page.content.decode()
    assert client.get(batch.get_absolute_url(), HTTP_IF_NONE_MATCH=page["ETag"], **HTMX).status_code == 304
    for computation in batch.computations.all():
        rows = Computation.objects.filter(pk=computation.pk)
        rows.claim(worker="test")
        rows.succeed(attempt=1, result="x")
    done = client.get(batch.get_absolute_url(), HTTP_IF_NONE_MATCH=page["ETag"], **HTMX)
    assert done.status_code == 286 and "3 of 3 ended" in done.content.decode()
    full = client.get(batch.get_absolute_url()).content.decode()
    assert "Batch #" in full and '<th scope="col">y</th>' in full and "1.0" in full


@pytest.mark.django_db
def test_a_batch_is_cancelled_and_retried_as_a_whole_and_audited(client, django_capture_on_commit_callbacks):
    batch = services.submit_batch(
        operation=REGISTRY["add"],
        varied="x",
        start=Decimal(1),
        stop=Decimal(5),
        step=Decimal(1),
        fixed={"y": Decimal(1)},
    )
    cancelled = client.post(reverse("batch-cancel", args=[batch.pk]), **HTMX)
    assert "5 computations of the batch cancelled." in cancelled.content.decode()
    assert set(batch.computations.values_list("status", flat=True)) == {Status.CANCELLED}
    with django_capture_on_commit_callbacks():
        retried = client.post(reverse("batch-retry", args=[batch.pk]))
    assert retried.status_code == 303
    assert set(batch.computations.values_list("status", flat=True)) == {Status.QUEUED}
    assert [entry.selection for entry in AuditEntry.objects.order_by("pk")] == [{"filter": {"batch": batch.pk}}] * 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
def test_a_batch_runs_to_its_end_on_the_worker(client):
    response = post_batch(client, start="1", stop="6")
    batch = Batch.objects.get()
    assert response.status_code == 200

    def ended() -> bool:
        return not batch.computations.in_flight().exists()

    wait_for(ended, timeout=30)
    results = dict(batch.computations.values_list("inputs__y", "result"))
    assert results == {"1": "12", "2": "6", "3": "4", "4": "3", "5": "2.4", "6": "2"}
