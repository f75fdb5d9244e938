"""Bulk cancel and retry, and the audit trail every cancel and retry leaves, from the dashboard, the admin and
the API."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from tasks import services
from tasks.models import AuditEntry, Computation, Status
from tests import factories
from tests.helpers import HTMX

pytestmark = pytest.mark.django_db

BULK = reverse("computations-bulk")


def statuses(*computations: Computation) -> list[str]:
    return [Computation.objects.get(pk=c.pk).status for c in computations]


def test_ticked_rows_are_cancelled_after_a_confirmation_that_counts_them(client):
    queued, running, done = (
        factories.computation(),
        factories.computation(Status.RUNNING, attempts=1),
        factories.computation(Status.SUCCEEDED),
    )
    ids = [queued.pk, running.pk, done.pk]
    asked = client.post(BULK, {"do": "cancel-selected", "ids": ids}, **HTMX)
    assert asked.status_code == 200
    assert "Cancel 2 computations?" in asked.content.decode()
    assert statuses(queued, running, done) == ["queued", "running", "succeeded"], "nothing changes before the confirm"

    confirmed = client.post(BULK, {"do": "cancel-selected", "ids": ids, "confirm": "on"}, **HTMX)
    assert confirmed.status_code == 200
    assert "2 computations cancelled." in confirmed.content.decode()
    assert "computations-changed" in confirmed["HX-Trigger"]
    assert statuses(queued, running, done) == ["cancelled", "cancelled", "succeeded"]

    entry = AuditEntry.objects.get()
    assert (entry.action, entry.source, entry.requested, entry.changed) == ("cancel", "dashboard", 2, 2)
    assert entry.address == "127.0.0.1" and entry.user is None
    assert entry.selection == {"ids": ids}
    assert set(entry.computations.values_list("pk", flat=True)) == {queued.pk, running.pk}


def test_all_matching_the_filters_are_retried_each_with_a_task_of_its_own(client, django_capture_on_commit_callbacks):
    failed = [factories.computation(Status.FAILED, error="boom", attempts=1) for _ in range(3)]
    other = factories.computation(Status.FAILED, operation="divide", error="boom")
    asked = client.post(BULK, {"do": "retry-matching", "status": "failed", "operation": "add"}, **HTMX)
    assert "Retry 3 computations?" in asked.content.decode()
    with django_capture_on_commit_callbacks() as callbacks:
        client.post(BULK, {"do": "retry-matching", "status": "failed", "operation": "add", "confirm": "on"}, **HTMX)
    assert statuses(*failed, other) == ["queued", "queued", "queued", "failed"]
    task_ids = {row.task_id for row in Computation.objects.filter(pk__in=[c.pk for c in failed])}
    assert len(task_ids) == 3 and not task_ids & {c.task_id for c in failed}
    assert len(callbacks) >= 2, "the requeued rows are sent after the commit"
    assert AuditEntry.objects.get().selection == {"filter": {"status": "failed", "operation": "add"}}


def test_a_bulk_action_changes_at_most_ten_thousand_at_once(client):
    Computation.objects.bulk_create(
        [Computation(operation="add", inputs={"x": "1", "y": "1"}) for _ in range(services.BULK_CAP + 5)]
    )
    asked = client.post(BULK, {"do": "cancel-matching"}, **HTMX)
    assert "Cancel 10000 computations?" in asked.content.decode() and "More match" in asked.content.decode()
    outcome = services.cancel(selection=services.Selection(filters={}), actor=services.Actor(source="dashboard"))
    assert (outcome.requested, outcome.changed, outcome.capped) == (services.BULK_CAP, services.BULK_CAP, True)
    assert Computation.objects.filter(status=Status.QUEUED).count() == 5
    oldest = Computation.objects.order_by("pk")[:5]
    assert all(row.status == Status.QUEUED for row in oldest), "the newest are taken first"


def test_a_bulk_action_needs_ticked_rows_and_nothing_changes_without_them(client):
    factories.computation()
    refused = client.post(BULK, {"do": "cancel-selected"}, **HTMX)
    assert refused.status_code == 400 and "Tick at least one computation first." in refused.content.decode()
    assert client.post(BULK, {"do": "delete-everything"}, **HTMX).status_code == 400
    assert client.post(BULK, {"do": "cancel-selected", "ids": ["1; DROP TABLE"]}, **HTMX).status_code == 400
    assert client.get(BULK).status_code == 405
    assert Computation.objects.get().status == Status.QUEUED and not AuditEntry.objects.exists()


def test_bulk_actions_work_without_script(client):
    queued = factories.computation()
    asked = client.post(BULK, {"do": "cancel-selected", "ids": [queued.pk], "status": "queued"})
    html = asked.content.decode()
    assert asked.status_code == 200 and "<html" in html and "Cancel 1 computation?" in html
    assert 'name="csrfmiddlewaretoken"' in html
    done = client.post(BULK, {"do": "cancel-selected", "ids": [queued.pk], "status": "queued", "confirm": "on"})
    assert done.status_code == 303 and done["Location"] == "/?status=queued"
    assert "1 computation cancelled." in client.get(done["Location"]).content.decode()


def test_bulk_actions_need_the_csrf_token():
    queued = factories.computation()
    response = Client(enforce_csrf_checks=True).post(
        BULK, {"do": "cancel-selected", "ids": [queued.pk], "confirm": "on"}
    )
    assert response.status_code == 403 and statuses(queued) == ["queued"]


def test_the_list_has_a_checkbox_per_row_that_survives_its_polls(client):
    queued = factories.computation()
    html = client.get(reverse("computations"), **HTMX).content.decode()
    assert f'id="select-{queued.pk}" hx-preserve="true"' in html and 'form="bulk-form"' in html


def test_single_actions_are_audited_with_their_source_and_shown_on_the_detail_page(client):
    computation = factories.computation()
    client.post(reverse("computation-cancel", args=[computation.pk]), HTTP_X_FORWARDED_FOR="203.0.113.7", **HTMX)
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.source, entry.address, entry.changed) == ("cancel", "dashboard", "203.0.113.7", 1)
    page = client.get(computation.get_absolute_url()).content.decode()
    assert "Timeline" in page and "Cancel, Dashboard" in page
    assert "203.0.113.7" not in page, "addresses stay in the admin"


def test_the_admin_actions_go_through_the_services_and_are_audited(admin_client, admin_user):
    computation = factories.computation()
    admin_client.post(
        reverse("admin:tasks_computation_changelist"), {"action": "cancel", "_selected_action": [computation.pk]}
    )
    entry = AuditEntry.objects.get()
    assert (entry.source, entry.user, entry.changed) == ("admin", admin_user, 1)
    listing = admin_client.get(reverse("admin:tasks_auditentry_changelist"))
    assert listing.status_code == 200 and "Admin site" in listing.content.decode()
    assert admin_client.get(reverse("admin:tasks_auditentry_add")).status_code == 403
    assert admin_client.post(reverse("admin:tasks_auditentry_delete", args=[entry.pk])).status_code == 403


def test_the_audit_trail_is_append_only():
    computation = factories.computation()
    outcome = services.cancel(selection=services.Selection(ids=[computation.pk]), actor=services.Actor("api"))
    entry = outcome.entry
    for attempt in (
        lambda: AuditEntry.objects.update(changed=0),
        lambda: AuditEntry.objects.all().delete(),
        entry.delete,
        entry.save,
    ):
        with pytest.raises(PermissionError):
            attempt()
    assert AuditEntry.objects.get().changed == 1


def test_the_api_cancels_and_retries_with_json_answers(client, django_capture_on_commit_callbacks):
    computation = factories.computation()
    cancelled = client.post(reverse("api-computation-cancel", args=[computation.pk]))
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = client.post(reverse("api-computation-cancel", args=[computation.pk]))
    assert again.status_code == 409 and "Only a queued or running computation" in again.json()["error"]
    with django_capture_on_commit_callbacks():
        retried = client.post(reverse("api-computation-retry", args=[computation.pk]))
    assert retried.status_code == 200 and retried.json()["status"] == "queued"
    assert client.post(reverse("api-computation-retry", args=[computation.pk + 1])).status_code == 404
    assert [entry.source for entry in AuditEntry.objects.all()] == ["api", "api", "api"]
    assert (
        Client(enforce_csrf_checks=True).post(reverse("api-computation-cancel", args=[computation.pk])).status_code
        == 403
    )
    assert json.loads(client.get(reverse("api-computation", args=[computation.pk])).content)["status"] == "queued"
