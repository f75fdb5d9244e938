"""Streaming exports: every matching row, in chunks, as CSV safe to open in a spreadsheet or as JSON."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tasks.models import Computation, Status
from tests import factories

pytestmark = pytest.mark.django_db


def content(response) -> str:
    assert response.streaming
    return b"".join(response.streaming_content).decode()


def test_the_csv_holds_every_matching_row_oldest_first_across_chunks(client):
    Computation.objects.bulk_create(
        [Computation(operation="add", inputs={"x": str(n), "y": "1"}, status=Status.SUCCEEDED) for n in range(4500)]
        + [Computation(operation="divide", inputs={"x": "1", "y": "2"}, status=Status.FAILED)]
    )
    response = client.get(reverse("export-csv"), {"status": "succeeded"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="computations-')
    rows = list(csv.reader(io.StringIO(content(response))))
    assert rows[0][:5] == ["id", "operation", "inputs", "work_seconds", "status"]
    assert len(rows) == 4501 and {row[4] for row in rows[1:]} == {"succeeded"}
    ids = [int(row[0]) for row in rows[1:]]
    assert ids == sorted(ids)
    assert json.loads(rows[1][2]) == {"x": "0", "y": "1"}


def test_cells_a_spreadsheet_would_run_are_neutralised_and_numbers_are_not(client):
    factories.computation(Status.FAILED, error='=HYPERLINK("http://evil.example")', worker="@SUM(1+1)")
    factories.computation(
        Status.SUCCEEDED,
        operation="subtract",
        inputs={"x": "1", "y": "4.5"},
        result="-3.5",
        worker="+cmd|' /C calc'!A0",
    )
    rows = list(csv.reader(io.StringIO(content(client.get(reverse("export-csv"))))))
    failed, succeeded = rows[1], rows[2]
    assert failed[6] == '\'=HYPERLINK("http://evil.example")' and failed[8] == "'@SUM(1+1)"
    assert succeeded[5] == "-3.5" and succeeded[8] == "'+cmd|' /C calc'!A0"


def test_the_json_export_filters_by_batch_and_date_range(client):
    batch = factories.batch(fixed_inputs={"y": "1"})
    inside, old = batch.computations.order_by("pk")
    Computation.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))
    factories.computation(inputs={"x": "3", "y": "1"})
    since = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%d %H:%M")
    response = client.get(reverse("export-json"), {"batch": batch.pk, "created_from": since})
    assert response["Content-Type"] == "application/json"
    data = json.loads(content(response))
    assert [row["id"] for row in data] == [inside.pk] and data[0]["batch_id"] == batch.pk
    assert json.loads(content(client.get(reverse("export-json"), {"batch": 999}))) == []


def test_invalid_export_filters_get_400_with_the_reason(client):
    for query in ({"status": "lost"}, {"created_from": "yesterday"}, {"batch": "-1"}):
        response = client.get(reverse("export-csv"), query)
        assert response.status_code == 400 and response["Content-Type"].startswith("text/plain")
    assert "Enter a valid date/time." in client.get(reverse("export-json"), {"created_to": "x"}).content.decode()
    assert client.post(reverse("export-csv")).status_code == 405


def test_an_export_refusal_is_plain_text_escaped_for_nothing(client):
    text = client.get(reverse("export-csv"), {"status": "<b>'lost'</b>", "before": "x"}).content.decode()
    assert text == (
        "status: Select a valid choice. <b>'lost'</b> is not one of the available choices.\n"
        "before: Enter a whole number.\n"
    )
