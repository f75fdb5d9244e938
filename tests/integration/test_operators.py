"""Operators, whatever DASHBOARD_LOGIN_REQUIRED says: every operator page and control, in the page, the API and the
admin, is refused to a visitor who is not signed in, to a person, and (its controls) to a read-only operator, and
the refusal changes nothing; an operator passes. With accounts on, a read-only operator sees everyone's work and
changes only their own."""

import pytest
from django.test import Client
from django.urls import reverse

from tasks import queues
from tasks.models import AuditEntry, Computation, Status
from tests import factories
from tests.helpers import HTMX

pytestmark = pytest.mark.django_db

# Operator pages and figures: read-only operators may see them.
READS = [
    ("page", reverse("workers")),
    ("page", reverse("storage")),
    ("api", reverse("api-workers")),
    ("admin", reverse("admin:queues")),
]
# Operator controls: operators alone.
WRITES = [
    ("page", reverse("queue-action", args=["heavy", "pause"])),
    ("page", reverse("queue-action", args=["heavy", "resume"])),
    ("page", reverse("queue-purge", args=["heavy"])),
    ("page", reverse("worker-action", args=["heavy@host-1", "grow"])),
    ("page", reverse("worker-action", args=["heavy@host-1", "shrink"])),
    ("page", reverse("worker-action", args=["heavy@host-1", "shutdown"])),
    ("api", reverse("api-queue", args=["heavy", "pause"])),
    ("api", reverse("api-queue", args=["heavy", "purge"])),
    ("api", reverse("api-worker", args=["heavy@host-1", "shutdown"])),
    ("admin", reverse("admin:queues")),
]


@pytest.fixture(params=[False, True], ids=["accounts off", "accounts on"])
def accounts(request, settings) -> bool:
    settings.DASHBOARD_LOGIN_REQUIRED = request.param
    return request.param


def post(client: Client, door: str, url: str):
    """What each door's control takes: the admin's queue page a form naming the queue and the action."""
    data = {"queue": "heavy", "action": "purge", "confirm": "yes"} if door == "admin" else {}
    return client.post(url, data)


def assert_nothing_changed(waiting: Computation) -> None:
    waiting.refresh_from_db()
    assert waiting.status == Status.QUEUED and queues.paused() == set() and not AuditEntry.objects.exists()


@pytest.mark.usefixtures("accounts")
@pytest.mark.parametrize(("door", "url"), READS + WRITES)
def test_a_visitor_who_is_not_signed_in_is_sent_to_sign_in_and_changes_nothing(door, url):
    waiting = factories.computation()
    visitor = Client()
    # A method the door does not take is refused (405) before anyone is asked to sign in.
    answers = [answer for answer in (visitor.get(url), post(visitor, door, url)) if answer.status_code != 405]
    assert answers
    for answer in answers:
        if door == "api":
            assert answer.status_code == 401 and answer.json() == {"error": "Sign in first."}
        else:
            login = "/admin/login/" if door == "admin" else "/accounts/login/"
            assert answer.status_code == 302 and answer["Location"].startswith(f"{login}?next="), answer
    # An HTMX request sends the whole page to sign in, not the login form into a partial.
    for method in (visitor.get, visitor.post):
        htmx = method(url, **HTMX, HTTP_HX_CURRENT_URL="http://testserver/workers/")
        if door == "page" and htmx.status_code != 405:
            assert htmx.status_code == 200 and htmx["HX-Redirect"] == "/accounts/login/?next=/workers/"
    assert_nothing_changed(waiting)


@pytest.mark.usefixtures("accounts")
@pytest.mark.parametrize(("door", "url"), READS + WRITES)
def test_a_person_without_the_permission_is_refused_even_as_staff(door, url):
    waiting = factories.computation()
    for user in (factories.person("ann"), factories.person("sam", is_staff=True)):
        client = factories.signed_in(user)
        for answer in (client.get(url), post(client, door, url)):
            if door == "admin" and not user.is_staff:  # the admin site asks anyone but staff to sign in as staff
                assert answer.status_code == 302 and answer["Location"].startswith("/admin/login/")
                continue
            assert answer.status_code in (403, 405), (user, answer)
            if door == "api" and answer.status_code == 403:
                assert answer.json() == {"error": "For operators only."}
    assert_nothing_changed(waiting)


@pytest.mark.usefixtures("accounts")
def test_a_read_only_operator_sees_the_operator_pages_without_their_controls():
    client = factories.signed_in(factories.operator(read_only=True))
    for _, url in READS:
        assert client.get(url).status_code == 200, url
    workers_page = client.get(reverse("workers")).content.decode()
    assert "Pause</button>" not in workers_page and reverse("queue-purge", args=["heavy"]) not in workers_page
    assert "Pause</button>" not in client.get(reverse("admin:queues")).content.decode()
    assert 'href="/workers/"' in client.get(reverse("dashboard")).content.decode()


@pytest.mark.usefixtures("accounts")
@pytest.mark.parametrize(("door", "url"), WRITES)
def test_a_read_only_operators_controls_are_refused_and_change_nothing(door, url):
    waiting = factories.computation()
    client = factories.signed_in(factories.operator(read_only=True))
    answer = post(client, door, url)
    assert answer.status_code == 403
    if door == "api":
        assert answer.json() == {"error": "For operators only."}
    assert_nothing_changed(waiting)


@pytest.mark.usefixtures("accounts")
def test_an_operator_sees_the_controls_and_steers_a_queue():
    client = factories.signed_in(factories.operator())
    assert "Pause</button>" in client.get(reverse("workers")).content.decode()
    try:
        assert client.post(reverse("api-queue", args=["heavy", "pause"])).json()["paused"] is True
        assert queues.paused() == {"heavy"}
    finally:
        client.post(reverse("api-queue", args=["heavy", "resume"]))
    assert queues.paused() == set()


def test_a_read_only_operators_admin_shows_the_audit_trail_and_acts_on_nothing():
    waiting = factories.computation()
    client = factories.signed_in(factories.operator("rita", read_only=True))
    assert client.get(reverse("admin:tasks_auditentry_changelist")).status_code == 200
    changelist = reverse("admin:tasks_computation_changelist")
    page = client.get(changelist).content.decode()
    assert 'value="cancel"' not in page and 'value="retry"' not in page
    client.post(changelist, {"action": "cancel", "_selected_action": [waiting.pk]})
    assert_nothing_changed(waiting)
    operator = factories.signed_in(factories.operator())
    operator.post(changelist, {"action": "cancel", "_selected_action": [waiting.pk]})
    waiting.refresh_from_db()
    assert waiting.status == Status.CANCELLED


@pytest.mark.usefixtures("accounts_on")
def test_with_accounts_on_a_read_only_operator_sees_everyones_work_and_changes_only_their_own():
    reader = factories.operator(read_only=True)
    theirs = factories.computation(owner=factories.person("ann"))
    own = factories.computation(owner=reader)
    client = factories.signed_in(reader)
    listed = client.get(reverse("computations"), **HTMX).content.decode()
    assert f'id="computation-{theirs.pk}"' in listed and f'id="computation-{own.pk}"' in listed
    assert client.get(reverse("computation-detail", args=[theirs.pk])).status_code == 200
    assert client.post(reverse("computation-cancel", args=[theirs.pk])).status_code == 403
    refused = client.post(reverse("api-computation-cancel", args=[theirs.pk]))
    assert refused.status_code == 403 and "not change it" in refused.json()["error"]
    bulk = client.post(reverse("computations-bulk"), {"do": "cancel-selected", "ids": [theirs.pk], "confirm": "on"})
    assert bulk.status_code in (200, 303)
    theirs.refresh_from_db()
    assert theirs.status == Status.QUEUED
    assert client.post(reverse("computation-cancel", args=[own.pk])).status_code in (200, 303)
    own.refresh_from_db()
    assert own.status == Status.CANCELLED


def test_with_accounts_off_a_visitor_sees_a_sign_in_link_and_no_operator_links(client):
    page = client.get(reverse("dashboard")).content.decode()
    assert 'href="/accounts/login/?next=/"' in page
    assert 'href="/workers/"' not in page and 'href="/storage/"' not in page
