"""The admin site: operators read computations and cancel or retry them through the same services."""

import pytest
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from tasks import services
from tasks.models import AuditEntry, Computation, Status
from tests import factories

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:tasks_computation_changelist")


def test_the_admin_requires_a_staff_login(client):
    response = client.get(CHANGELIST)
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))


def test_the_list_shows_filters_and_searches_by_id_and_task_id(admin_client):
    first = factories.computation(Status.SUCCEEDED)
    second = factories.computation(Status.FAILED, operation="divide")
    page = admin_client.get(CHANGELIST).content.decode()
    assert f"/flower/task/{first.task_id}" in page and "divide" in page

    by_id = admin_client.get(CHANGELIST, {"q": str(second.pk)}).context["cl"].result_list
    assert list(by_id) == [second]
    by_task = admin_client.get(CHANGELIST, {"q": str(first.task_id)}).context["cl"].result_list
    assert list(by_task) == [first]
    assert admin_client.get(CHANGELIST, {"q": "not-a-number"}).status_code == 200
    failed = admin_client.get(CHANGELIST, {"status__exact": "failed"}).context["cl"].result_list
    assert list(failed) == [second]


def test_rows_cannot_be_added_or_edited_by_hand(admin_client):
    computation = factories.computation()
    assert admin_client.get(reverse("admin:tasks_computation_add")).status_code == 403
    change = reverse("admin:tasks_computation_change", args=[computation.pk])
    assert admin_client.post(change, {"status": "succeeded", "result": "forged"}).status_code == 403
    computation.refresh_from_db()
    assert computation.status == Status.QUEUED and computation.result == ""


def test_rows_cannot_be_deleted_in_the_admin(admin_client):
    computation = factories.computation()
    delete = reverse("admin:tasks_computation_delete", args=[computation.pk])
    assert admin_client.get(delete).status_code == 403
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    changelist = admin_client.get(CHANGELIST).content.decode()
    assert 'value="delete_selected"' not in changelist and 'value="retry"' in changelist
    admin_client.post(CHANGELIST, {"action": "delete_selected", "_selected_action": [computation.pk], "post": "yes"})
    assert Computation.objects.filter(pk=computation.pk).exists()


def test_the_database_keeps_the_audit_trail_append_only(admin_client):
    computation = factories.computation()
    operator = factories.person("operator")
    entry = services.cancel(
        selection=services.Selection(ids=[computation.pk]),
        actor=services.Actor(source=AuditEntry.Source.ADMIN, address="192.0.2.1", user=operator),
    ).entry
    rows = AuditEntry.objects.filter(pk=entry.pk)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        rows._raw_delete(rows.db)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE tasks_auditentry SET changed = 0 WHERE id = %s", [entry.pk])
    assert admin_client.get(reverse("admin:tasks_auditentry_delete", args=[entry.pk])).status_code == 403
    # The one change it allows: a deleted user's entries keep everything but the user.
    operator.delete()
    kept = AuditEntry.objects.get(pk=entry.pk)
    assert (kept.user, kept.address, kept.changed, kept.action) == (None, "192.0.2.1", 1, "cancel")


def test_cancel_and_retry_actions_go_through_the_services(admin_client, django_capture_on_commit_callbacks):
    queued = factories.computation()
    failed = factories.computation(Status.FAILED, error="x")
    admin_client.post(CHANGELIST, {"action": "cancel", "_selected_action": [queued.pk, failed.pk]})
    queued.refresh_from_db()
    failed.refresh_from_db()
    assert queued.status == Status.CANCELLED and failed.status == Status.FAILED

    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post(
            CHANGELIST, {"action": "retry", "_selected_action": [queued.pk, failed.pk]}, follow=True
        )
    assert "2 computations queued again." in response.content.decode()
    assert Computation.objects.filter(status=Status.QUEUED).count() == 2
    # After the commit: the change recorded, both rows sent over one broker connection, the audit entry recorded.
    assert len(callbacks) == 3


def test_a_workflow_is_listed_read_only_and_links_to_its_graph_and_its_steps(admin_client, sent):
    from tasks.workflows import plan, recording

    workflow = recording.submit(
        plan.plan(
            [
                {"operation": "add", "inputs": {"x": 1, "y": 2}},
                {"operation": "add", "inputs": {"x": {"step": 1}, "y": 3}},
            ],
            name="two adds",
        )
    )
    page = admin_client.get(reverse("admin:tasks_workflow_changelist")).content.decode()
    assert "two adds" in page and f'href="/workflows/{workflow.pk}/"' in page
    detail = admin_client.get(reverse("admin:tasks_workflow_change", args=[workflow.pk])).content.decode()
    steps_url = f"{CHANGELIST}?workflow__id__exact={workflow.pk}"
    assert steps_url.replace("&", "&amp;") in detail
    steps = admin_client.get(CHANGELIST, {"workflow__id__exact": workflow.pk}).context["cl"].result_list
    assert sorted(step.step for step in steps) == [1, 2]
    assert admin_client.get(reverse("admin:tasks_workflow_add")).status_code == 403
    assert (
        admin_client.post(reverse("admin:tasks_workflow_delete", args=[workflow.pk]), {"post": "yes"}).status_code
        == 403
    )
