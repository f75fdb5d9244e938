"""Whatever queues work counts against the same limits: a retry, single or bulk, from the pages, the API or the
admin, is a submission for the rate limit and for the queue's cap; every login has the same limit of attempts."""

import pytest
from django.test import Client
from django.urls import reverse

from tasks import services
from tasks.models import AuditEntry, Batch, Computation, Status
from tests import factories
from tests.helpers import HTMX

pytestmark = pytest.mark.django_db

BULK = reverse("computations-bulk")


def failed(count: int = 1, **fields) -> list[Computation]:
    return [factories.computation(Status.FAILED, **fields) for _ in range(count)]


def queued(count: int) -> None:
    Computation.objects.bulk_create(Computation(operation="add", inputs={"x": "1", "y": "1"}) for _ in range(count))


def retries(client: Client, computation: Computation) -> dict[str, int]:
    """Each way of retrying one computation, and the status it got."""
    answers = {
        "page": client.post(reverse("computation-retry", args=[computation.pk]), **HTMX),
        "api": client.post(reverse("api-computation-retry", args=[computation.pk])),
        "bulk": client.post(BULK, {"do": "retry-selected", "ids": [computation.pk], "confirm": "on"}, **HTMX),
    }
    return {way: answer.status_code for way, answer in answers.items()}


def test_retries_count_against_the_submission_limit(settings, django_capture_on_commit_callbacks):
    settings.SUBMISSION_RATE_LIMIT = "2/h"
    client = Client(REMOTE_ADDR="198.51.100.7")
    first, second, third = failed(3)
    with django_capture_on_commit_callbacks():
        assert client.post(reverse("computation-retry", args=[first.pk]), **HTMX).status_code == 200
        assert client.post(reverse("computations"), {"operation": "add", "x": "1", "y": "2"}, **HTMX).status_code == 200
        statuses = retries(client, second)
    assert statuses == {"page": 429, "api": 429, "bulk": 429}
    api = client.post(reverse("api-computation-retry", args=[third.pk]))
    assert int(api["Retry-After"]) >= 1 and "Too many submissions" in api.json()["error"]
    assert [c.status for c in Computation.objects.filter(pk__in=[second.pk, third.pk])] == [Status.FAILED] * 2
    assert AuditEntry.objects.count() == 1, "a refused retry is not an action"


def test_retries_are_refused_when_the_queue_is_full(client, settings, django_capture_on_commit_callbacks):
    settings.COMPUTATION_MAX_QUEUED = 3
    queued(3)
    (computation,) = failed()
    with django_capture_on_commit_callbacks():
        statuses = retries(client, computation)
    assert statuses == {"page": 503, "api": 503, "bulk": 503}
    assert Computation.objects.get(pk=computation.pk).status == Status.FAILED
    assert "The queue is full" in client.post(reverse("api-computation-retry", args=[computation.pk])).json()["error"]


def test_a_bulk_retry_that_would_pass_the_cap_is_refused_with_the_count(client, settings):
    settings.COMPUTATION_MAX_QUEUED = 10
    queued(4)
    rows = failed(7)
    data = {"do": "retry-matching", "status": "failed", "confirm": "on"}
    refused = client.post(BULK, data, **HTMX)
    assert refused.status_code == 503 and refused["Retry-After"] == "60"
    assert "room for 6 more computations and this would add 7" in refused.content.decode()
    assert Computation.objects.filter(pk__in=[row.pk for row in rows], status=Status.FAILED).count() == 7
    assert not AuditEntry.objects.exists()

    Computation.objects.filter(pk=rows[0].pk).update(status=Status.SUCCEEDED)
    assert client.post(BULK, data, **HTMX).status_code == 200, "six fit"
    assert Computation.objects.filter(status=Status.QUEUED).count() == 10


def test_a_batch_and_its_retry_must_fit_in_the_queue(client, settings, django_capture_on_commit_callbacks):
    settings.COMPUTATION_MAX_QUEUED = 10
    queued(8)
    data = {"operation": "add", "varied": "x", "start": "1", "stop": "3", "step": "1", "y": "1"}
    refused = client.post(reverse("batches"), data, **HTMX)
    assert refused.status_code == 503
    assert "room for 2 more computations and this would add 3" in refused.content.decode()
    assert not Batch.objects.exists()
    Computation.objects.filter(status=Status.QUEUED)[:1].get().delete()
    with django_capture_on_commit_callbacks():
        assert client.post(reverse("batches"), data, **HTMX).status_code == 200
    batch = Batch.objects.get()
    batch.computations.update(status=Status.FAILED)
    queued(1)
    retried = client.post(reverse("batch-retry", args=[batch.pk]), **HTMX)
    assert retried.status_code == 503 and batch.computations.filter(status=Status.FAILED).count() == 3


def test_the_admins_retry_is_refused_when_the_queue_is_full(admin_client, settings):
    settings.COMPUTATION_MAX_QUEUED = 1
    queued(1)
    (computation,) = failed()
    answer = admin_client.post(
        reverse("admin:tasks_computation_changelist"),
        {"action": "retry", "_selected_action": [computation.pk]},
        follow=True,
    )
    assert "The queue is full" in answer.content.decode()
    assert Computation.objects.get(pk=computation.pk).status == Status.FAILED


def test_the_admin_login_shares_the_dashboards_limit_of_attempts(settings):
    # An hour's window: the limits' windows are fixed, and a minute's could close between attempts.
    settings.LOGIN_RATE_LIMIT = "3/h"
    factories.superuser("root")
    guesser = Client(REMOTE_ADDR="198.51.100.7")
    attempts = [
        guesser.post(reverse("login"), {"username": "root", "password": "guess"}).status_code,
        guesser.post(reverse("admin:login"), {"username": "root", "password": "guess"}).status_code,
        guesser.post(reverse("admin:login"), {"username": "root", "password": "guess"}).status_code,
    ]
    assert attempts == [200, 200, 200]
    refused = guesser.post(reverse("admin:login"), {"username": "root", "password": "a long enough password"})
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert "Too many attempts to sign in from your address" in refused.content.decode()
    assert "_auth_user_id" not in guesser.session, "not even the right password gets in meanwhile"
    other = Client(REMOTE_ADDR="198.51.100.8")
    answer = other.post(reverse("admin:login"), {"username": "root", "password": "a long enough password"})
    assert answer.status_code == 302


def test_a_bulk_action_reaches_its_cap_of_ids(client):
    ids = [str(pk) for pk in range(1, services.BULK_CAP + 1)]
    asked = client.post(BULK, {"do": "cancel-selected", "ids": ids}, **HTMX)
    assert asked.status_code == 200 and "Cancel 0 computations?" in asked.content.decode()
    over = client.post(BULK, {"do": "cancel-selected", "ids": [*ids, str(services.BULK_CAP + 1)]}, **HTMX)
    assert over.status_code == 400 and f"At most {services.BULK_CAP} computations at once." in over.content.decode()
    assert "Tick at least one" not in over.content.decode(), "one reason, the right one"
