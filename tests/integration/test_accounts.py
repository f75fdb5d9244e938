"""Optional accounts: with DASHBOARD_LOGIN_REQUIRED every page, the API and the exports need a signed-in person,
who sees and acts on their own computations and batches only (operators see all); another's answers 404. Off, the
dashboard is open, as the other tests use it."""

import json
import uuid

import pytest
from django.test import Client
from django.urls import reverse

from tasks.models import AuditEntry, Batch, Computation, Status
from tests import factories
from tests.helpers import HTMX

pytestmark = pytest.mark.django_db


def test_off_the_dashboard_is_open_to_everyone(client):
    computation = factories.computation(Status.SUCCEEDED)
    assert client.get(reverse("dashboard")).status_code == 200
    assert client.get(reverse("computation-detail", args=[computation.pk])).status_code == 200


@pytest.mark.usefixtures("accounts_on")
def test_on_everything_but_health_and_metrics_needs_signing_in(client):
    computation = factories.computation()
    page = client.get(reverse("computation-detail", args=[computation.pk]))
    assert page.status_code == 302 and page["Location"] == f"/accounts/login/?next=/computations/{computation.pk}/"
    export = client.get(reverse("export-csv"))
    assert export.status_code == 302 and export["Location"].startswith("/accounts/login/")
    api = client.get(reverse("api-computation", args=[computation.pk]))
    assert api.status_code == 401 and api.json() == {"error": "Sign in first."}
    assert client.post(reverse("api-computation-cancel", args=[computation.pk])).status_code == 401
    # An HTMX request (a poll, a form) sends the whole page to the login page, back to where the person was.
    poll = client.get(reverse("computations"), HTTP_HX_CURRENT_URL="http://testserver/?status=queued", **HTMX)
    assert poll["HX-Redirect"] == "/accounts/login/?next=/%3Fstatus%3Dqueued"
    submitted = client.post(reverse("computations"), {"operation": "add", "x": "1", "y": "1"}, **HTMX)
    assert "HX-Redirect" in submitted and Computation.objects.count() == 1
    assert Computation.objects.get().status == Status.QUEUED, "nothing changed"
    for name in ("healthz", "readyz", "login"):
        assert client.get(reverse(name)).status_code == 200, name
    assert client.get(reverse("metrics"), HTTP_X_DASHBOARD_LISTENER="monitoring").status_code == 200
    assert client.post(reverse("set_language"), {"language": "zh-hans", "next": "/"}).status_code == 302
    admin = client.get(reverse("admin:index"))
    assert admin.status_code == 302 and admin["Location"].startswith("/admin/login/"), "the admin keeps its login"


@pytest.mark.usefixtures("accounts_on")
def test_signing_in_and_out_through_the_styled_pages(people):
    browser = Client(enforce_csrf_checks=True)
    form = browser.get(reverse("login") + "?next=/computations/").content.decode()
    assert 'class="site-header"' in form and 'name="password"' in form and 'value="/computations/"' in form
    token = browser.cookies["csrftoken"].value
    wrong = browser.post(reverse("login"), {"username": "ann", "password": "nope", "csrfmiddlewaretoken": token})
    assert wrong.status_code == 200 and "errorlist" in wrong.content.decode()
    answer = browser.post(
        reverse("login"),
        {
            "username": "ann",
            "password": "a long enough password",
            "next": "/computations/",
            "csrfmiddlewaretoken": token,
        },
    )
    assert answer.status_code == 302 and answer["Location"] == "/computations/"
    page = browser.get(reverse("dashboard")).content.decode()
    assert "Signed in as ann" in page and 'action="/accounts/logout/"' in page
    token = browser.cookies["csrftoken"].value
    assert browser.get(reverse("logout")).status_code == 405, "signing out is a POST"
    assert browser.post(reverse("logout"), {"csrfmiddlewaretoken": token}).status_code == 302
    assert browser.get(reverse("dashboard")).status_code == 302


@pytest.mark.usefixtures("accounts_on")
def test_each_person_sees_their_own_and_operators_see_all(people):
    ann, bob, sam = (factories.signed_in(people[name]) for name in ("ann", "bob", "sam"))
    submitted = ann.post(
        reverse("computations"), {"operation": "add", "x": "1", "y": "2", "idempotency_key": str(uuid.uuid4())}, **HTMX
    )
    assert submitted.status_code == 200
    annes = Computation.objects.get()
    assert annes.owner == people["ann"]
    bobs = factories.computation(Status.FAILED, owner=people["bob"], error="x")

    def listed(client: Client) -> set[int]:
        html = client.get(reverse("computations"), **HTMX).content.decode()
        return {pk for pk in (annes.pk, bobs.pk) if f'id="computation-{pk}"' in html}

    assert listed(ann) == {annes.pk} and listed(bob) == {bobs.pk} and listed(sam) == {annes.pk, bobs.pk}
    assert "Queued <strong>0</strong>" in bob.get(reverse("dashboard")).content.decode(), "counts are one's own"
    for url in (reverse("computation-detail", args=[annes.pk]), reverse("api-computation", args=[annes.pk])):
        assert bob.get(url).status_code == 404 and ann.get(url).status_code == 200 and sam.get(url).status_code == 200
    exported = bob.get(reverse("export-json"))
    assert [row["id"] for row in json.loads(b"".join(exported.streaming_content))] == [bobs.pk]


@pytest.mark.usefixtures("accounts_on")
def test_no_one_acts_on_anothers_computations(people):
    ann, bob = factories.signed_in(people["ann"]), factories.signed_in(people["bob"])
    annes = factories.computation(owner=people["ann"])
    for url in (reverse("computation-cancel", args=[annes.pk]), reverse("api-computation-cancel", args=[annes.pk])):
        assert bob.post(url, **HTMX).status_code == 404
    everything = bob.post(reverse("computations-bulk"), {"do": "cancel-matching", "confirm": "on"}, **HTMX)
    assert everything.status_code == 200 and "0 computations cancelled." in everything.content.decode()
    ticked = bob.post(reverse("computations-bulk"), {"do": "cancel-selected", "ids": [annes.pk], "confirm": "on"})
    assert ticked.status_code in (200, 303)
    annes.refresh_from_db()
    assert annes.status == Status.QUEUED, "untouched by bob"
    assert AuditEntry.objects.filter(changed__gt=0).count() == 0
    assert ann.post(reverse("computation-cancel", args=[annes.pk]), **HTMX).status_code == 200
    annes.refresh_from_db()
    assert annes.status == Status.CANCELLED


@pytest.mark.usefixtures("accounts_on")
def test_batches_are_their_owners(people):
    ann, bob = factories.signed_in(people["ann"]), factories.signed_in(people["bob"])
    data = {"operation": "add", "varied": "x", "start": "1", "stop": "3", "step": "1", "y": "1"}
    answer = ann.post(reverse("batches"), {**data, "idempotency_key": str(uuid.uuid4())}, **HTMX)
    batch = Batch.objects.get()
    assert answer["HX-Redirect"] == batch.get_absolute_url()
    assert batch.owner == people["ann"] and set(batch.computations.values_list("owner", flat=True)) == {
        people["ann"].pk
    }
    for url in (batch.get_absolute_url(), reverse("batch-rows", args=[batch.pk])):
        assert bob.get(url).status_code == 404 and ann.get(url).status_code == 200
    assert bob.post(reverse("batch-cancel", args=[batch.pk])).status_code == 404
    assert batch.computations.filter(status=Status.CANCELLED).count() == 0


@pytest.mark.usefixtures("accounts_on")
def test_guessing_passwords_is_slowed_down(people, settings):
    # An hour's window: the limits' windows are fixed, and a minute's could close between attempts.
    settings.LOGIN_RATE_LIMIT = "3/h"
    client = Client(REMOTE_ADDR="198.51.100.7")
    for _ in range(3):
        assert client.post(reverse("login"), {"username": "ann", "password": "guess"}).status_code == 200
    refused = client.post(reverse("login"), {"username": "ann", "password": "a long enough password"})
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert "Too many attempts to sign in from your address" in refused.content.decode()
    assert "_auth_user_id" not in client.session, "not even the right password gets in meanwhile"
    other = Client(REMOTE_ADDR="198.51.100.8")
    assert other.post(reverse("login"), {"username": "ann", "password": "a long enough password"}).status_code == 302


@pytest.mark.usefixtures("accounts_on")
def test_changing_ones_password(people):
    ann = factories.signed_in(people["ann"])
    form = ann.get(reverse("password_change")).content.decode()
    assert 'class="site-header"' in form and 'name="old_password"' in form and 'name="new_password2"' in form
    new = "another long enough password"
    answer = ann.post(
        reverse("password_change"),
        {"old_password": "a long enough password", "new_password1": new, "new_password2": new},
    )
    assert answer.status_code == 302 and answer["Location"] == reverse("password_change_done")
    assert "you stay signed in" in ann.get(answer["Location"]).content.decode()
    people["ann"].refresh_from_db()
    assert people["ann"].check_password(new)
