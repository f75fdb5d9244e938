"""/api/v1/: tokens (hashed, revocable, expiring, read-only, one person's), what a program can do with one (submit,
with idempotency; list by cursor; read, cancel, retry, one or in bulk; batches; schedules; operators' controls), the
limits and the cap through it, and its errors as problem+json whatever layer answered them."""

import hashlib
import json
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tasks.models import ApiToken, AuditEntry, Batch, Computation, Status
from tests import factories

pytestmark = pytest.mark.django_db
PROBLEM = "application/problem+json"
V1 = "/api/v1"


class Program:
    """A program with a token: no cookie, so no CSRF; every call JSON."""

    def __init__(self, token: str | None):
        self.client = Client(enforce_csrf_checks=True)
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, path: str, **params: object):
        return self.client.get(V1 + path, params, headers=self.headers)

    def post(self, path: str, body: object = None, **headers: str):
        data = body if isinstance(body, str | bytes) else json.dumps(body or {})
        return self.client.post(V1 + path, data, content_type="application/json", headers=self.headers | headers)

    def delete(self, path: str):
        return self.client.delete(V1 + path, headers=self.headers)


def program(user, **options: object) -> Program:
    return Program(ApiToken.objects.issue(user, "script", **options)[1])


def problem(response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["type"] == f"urn:computation-dashboard:problem:{slug}" and body["status"] == status
    assert body["title"] and body["detail"]
    return body


@pytest.fixture
def ann(people):
    return program(people["ann"])


def test_a_token_is_shown_once_and_kept_only_as_its_hash(people):
    row, token = ApiToken.objects.issue(people["ann"], "deploys")
    assert token.startswith("cdt_") and len(token) > 40
    stored = ApiToken.objects.filter(pk=row.pk).values().get()
    assert stored["key_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in json.dumps(stored, default=str), "only the hash and the first characters are kept"
    assert stored["hint"] == token[:8] and stored["last_used_at"] is None
    assert Program(token).get("/computations").status_code == 200
    assert ApiToken.objects.get(pk=row.pk).last_used_at is not None


def test_a_wrong_revoked_or_expired_token_is_401_in_json(people):
    row, token = ApiToken.objects.issue(people["ann"], "old", expires_at=timezone.now() + timedelta(days=1))
    assert Program(token).get("/computations").status_code == 200
    ApiToken.objects.filter(pk=row.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    problem(Program(token).get("/computations"), 401, "unauthorized")
    _, live = ApiToken.objects.issue(people["ann"], "revoked")
    ApiToken.objects.filter(name="revoked").delete()
    problem(Program(live).get("/computations"), 401, "unauthorized")
    problem(Program("cdt_" + "x" * 43).post("/computations", {"operation": "add"}), 401, "unauthorized")
    wrong_scheme = Client().get(V1 + "/computations", headers={"Authorization": f"Token {token}"})
    problem(wrong_scheme, 401, "unauthorized")
    people["ann"].is_active = False
    people["ann"].save()
    _, inactive = ApiToken.objects.issue(people["ann"], "inactive")
    problem(Program(inactive).get("/computations"), 401, "unauthorized")


def test_token_failures_share_the_sign_in_limit(people, settings):
    settings.LOGIN_RATE_LIMIT = "2/m"
    wrong = Program("cdt_wrong")
    problem(wrong.get("/computations"), 401, "unauthorized")
    problem(wrong.get("/computations"), 401, "unauthorized")
    limited = problem(wrong.get("/computations"), 429, "rate-limited")
    assert "sign in" in limited["detail"] and int(wrong.get("/computations")["Retry-After"]) >= 1
    signing_in = Client().post(reverse("login"), {"username": "ann", "password": factories.PASSWORD})
    assert signing_in.status_code == 429, "the same address's sign-ins are over the limit too"


def test_a_token_needs_no_csrf_and_a_session_does(people, ann):
    made = ann.post("/computations", {"operation": "add", "inputs": {"x": 1, "y": "2.5"}})
    assert made.status_code == 201
    body = made.json()
    assert made["Location"] == f"{V1}/computations/{body['id']}"
    assert body["status"] == Status.QUEUED and body["inputs"] == {"x": "1", "y": "2.5"}
    session = Client(enforce_csrf_checks=True)
    session.force_login(people["ann"])
    refused = session.post(V1 + "/computations", {"operation": "add"}, content_type="application/json")
    problem(refused, 403, "csrf")
    session.get(reverse("dashboard"))
    csrf = session.cookies["csrftoken"].value
    body = {"operation": "add", "inputs": {"x": 1, "y": 1}}
    accepted = session.post(V1 + "/computations", body, content_type="application/json", headers={"X-CSRFToken": csrf})
    assert accepted.status_code == 201 and Computation.objects.filter(owner=people["ann"]).count() == 2


def test_with_accounts_off_anyone_reads_and_only_tokens_write(settings):
    factories.computation()
    anonymous = Program(None)
    assert len(anonymous.get("/computations").json()["items"]) == 1
    problem(anonymous.post("/computations", {"operation": "add", "inputs": {"x": 1, "y": 1}}), 401, "unauthorized")
    settings.API_ANONYMOUS_WRITES = True
    anonymous.client.get(reverse("dashboard"))
    csrf = anonymous.client.cookies["csrftoken"].value
    made = anonymous.post("/computations", {"operation": "add", "inputs": {"x": 1, "y": 1}}, **{"X-CSRFToken": csrf})
    assert made.status_code == 201 and Computation.objects.count() == 2


@pytest.mark.usefixtures("accounts_on")
def test_with_accounts_on_nothing_is_read_without_a_token_or_a_session():
    factories.computation()
    problem(Program(None).get("/computations"), 401, "unauthorized")


def test_a_token_sees_and_changes_its_persons_computations_only(people, ann):
    theirs = factories.computation(owner=people["bob"])
    mine = factories.computation(owner=people["ann"])
    assert [row["id"] for row in ann.get("/computations").json()["items"]] == [mine.pk]
    problem(ann.get(f"/computations/{theirs.pk}"), 404, "not-found")
    problem(ann.post(f"/computations/{theirs.pk}/cancel"), 404, "not-found")
    assert ann.post("/computations/cancel", {"ids": [theirs.pk, mine.pk]}).json()["changed"] == 1
    assert Computation.objects.get(pk=theirs.pk).status == Status.QUEUED


def test_a_read_only_token_reads_and_changes_nothing(people):
    reader = program(people["ann"], read_only=True)
    mine = factories.computation(owner=people["ann"])
    assert reader.get(f"/computations/{mine.pk}").status_code == 200
    problem(reader.post(f"/computations/{mine.pk}/cancel"), 403, "read-only")
    problem(reader.post("/computations", {"operation": "add", "inputs": {"x": 1, "y": 1}}), 403, "read-only")
    assert Computation.objects.get(pk=mine.pk).status == Status.QUEUED and Computation.objects.count() == 1


def test_the_same_idempotency_key_twice_makes_one_computation(people, ann):
    body = {"operation": "multiply", "inputs": {"x": 6, "y": 7}}
    first = ann.post("/computations", body, **{"Idempotency-Key": "order-17"})
    again = ann.post("/computations", body, **{"Idempotency-Key": "order-17"})
    assert first.status_code == again.status_code == 201 and first.json()["id"] == again.json()["id"]
    assert Computation.objects.count() == 1
    bob = program(people["bob"]).post("/computations", body, **{"Idempotency-Key": "order-17"})
    assert bob.json()["id"] != first.json()["id"], "a key is its client's own"
    other = ann.post("/computations", body, **{"Idempotency-Key": "order-18"})
    assert other.json()["id"] not in (first.json()["id"], bob.json()["id"]) and Computation.objects.count() == 3


def test_every_write_is_in_the_audit_trail_with_the_tokens_name(people, ann):
    made = ann.post("/computations", {"operation": "add", "inputs": {"x": 1, "y": 1}}).json()
    ann.post(f"/computations/{made['id']}/cancel")
    batch = ann.post(
        "/batches", {"operation": "add", "vary": "x", "start": 1, "stop": 3, "step": 1, "inputs": {"y": 1}}
    )
    entries = AuditEntry.objects.order_by("pk")
    assert [(entry.action, entry.source, entry.token_name, entry.user) for entry in entries] == [
        (AuditEntry.Action.SUBMIT, AuditEntry.Source.API, "script", people["ann"]),
        (AuditEntry.Action.CANCEL, AuditEntry.Source.API, "script", people["ann"]),
        (AuditEntry.Action.SUBMIT, AuditEntry.Source.API, "script", people["ann"]),
    ]
    assert entries[0].selection == {"ids": [made["id"]]} and list(entries[0].computations.all()) == [
        Computation.objects.get(pk=made["id"])
    ]
    assert entries[2].selection == {"batch": batch.json()["id"]} and entries[2].requested == 3


def test_bad_input_is_a_problem_with_each_fields_message_and_writes_nothing(ann):
    cases = [
        ("{not json", 400, "malformed", None),
        ({"operation": "add", "inputs": {"x": 1, "y": 1}, "colour": "red"}, 422, "invalid", "#/colour"),
        ({"operation": "divide", "inputs": {"x": 1, "y": 0}}, 422, "invalid", "#/inputs/y"),
        ({"operation": "add", "inputs": {"x": 1}}, 422, "invalid", "#/inputs/y"),
        ({"operation": "add", "inputs": {"x": 1, "y": 1, "z": 3}}, 422, "invalid", "#/inputs/z"),
        ({"operation": "add", "inputs": {"x": "1e999999", "y": 1}}, 422, "invalid", "#/inputs/x"),
        ({"operation": "add", "inputs": {"x": 10**400, "y": 1}}, 422, "invalid", "#/inputs/x"),
        ({"operation": "add", "inputs": {"x": "NaN", "y": 1}}, 422, "invalid", "#/inputs/x"),
        ({"operation": "add", "inputs": {"x": [1], "y": 1}}, 422, "invalid", "#/inputs/x"),
        ({"operation": "nope", "inputs": {}}, 422, "invalid", "#/operation"),
        ({"operation": "add", "inputs": {"x": 1, "y": 1}, "work_seconds": 61}, 422, "invalid", "#/work_seconds"),
        ([1, 2], 422, "invalid", None),
    ]
    for body, status, slug, pointer in cases:
        answer = problem(ann.post("/computations", body), status, slug)
        if pointer:
            assert pointer in [error.get("pointer") for error in answer["errors"]], (body, answer)
    problem(ann.post("/computations", "x" * (300 * 1024)), 413, "too-large")
    assert Computation.objects.count() == 0 and AuditEntry.objects.count() == 0


def test_every_error_under_v1_is_a_problem(ann):
    problem(ann.get("/nothing-here"), 404, "not-found")
    problem(ann.get("/computations/999999"), 404, "not-found")
    problem(ann.client.put(V1 + "/computations", headers=ann.headers), 405, "method-not-allowed")
    problem(ann.get("/computations", limit=101), 422, "invalid")
    assert problem(ann.get("/computations", before=0), 422, "invalid")["errors"][0]["parameter"] == "before"


def test_the_list_pages_by_cursor_with_the_pages_filters(people, ann):
    made = [factories.computation(owner=people["ann"]) for _ in range(5)]
    failed = factories.computation(Status.FAILED, owner=people["ann"])
    first = ann.get("/computations", limit=4).json()
    assert [row["id"] for row in first["items"]] == [failed.pk, *(row.pk for row in made[:1:-1])]
    second = ann.client.get(first["next"], headers=ann.headers).json()
    assert [row["id"] for row in second["items"]] == [made[1].pk, made[0].pk] and second["next"] is None
    assert "limit=4" in first["next"]
    assert [row["id"] for row in ann.get("/computations", status="failed").json()["items"]] == [failed.pk]
    assert [row["id"] for row in ann.get("/computations", q=f"#{made[2].pk}").json()["items"]] == [made[2].pk]


def test_read_cancel_and_retry_one(people, ann):
    mine = factories.computation(owner=people["ann"])
    read = ann.get(f"/computations/{mine.pk}").json()
    assert read["id"] == mine.pk and [step["title"] for step in read["timeline"]] == ["Submitted"]
    cancelled = ann.post(f"/computations/{mine.pk}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == Status.CANCELLED
    again = problem(ann.post(f"/computations/{mine.pk}/cancel"), 409, "conflict")
    assert again["computation"]["status"] == Status.CANCELLED
    assert ann.post(f"/computations/{mine.pk}/retry").json()["status"] == Status.QUEUED
    timeline = [step["title"] for step in ann.get(f"/computations/{mine.pk}").json()["timeline"]]
    assert timeline[0] == "Submitted" and any("Cancel" in title for title in timeline)


def test_bulk_by_ids_or_by_filter(people, ann):
    queued = [factories.computation(owner=people["ann"]) for _ in range(3)]
    failed = factories.computation(Status.FAILED, owner=people["ann"])
    assert ann.post("/computations/cancel", {"ids": [queued[0].pk]}).json() == {
        "requested": 1,
        "changed": 1,
        "capped": False,
    }
    assert ann.post("/computations/retry", {"filter": {"status": "failed"}}).json()["changed"] == 1
    assert Computation.objects.get(pk=failed.pk).status == Status.QUEUED
    problem(ann.post("/computations/cancel", {}), 422, "invalid")
    problem(ann.post("/computations/cancel", {"ids": [1], "filter": {}}), 422, "invalid")


def test_a_batch_through_the_api(people, ann):
    body = {"operation": "add", "vary": "x", "start": 1, "stop": 4, "step": 1, "inputs": {"y": 10}}
    made = ann.post("/batches", body, **{"Idempotency-Key": "nightly"})
    assert made.status_code == 201 and made["Location"] == f"{V1}/batches/{made.json()['id']}"
    batch = made.json()
    assert batch["size"] == 4 and batch["counts"]["queued"] == 4 and batch["inputs"] == {"y": "10"}
    assert ann.post("/batches", body, **{"Idempotency-Key": "nightly"}).json()["id"] == batch["id"]
    assert Batch.objects.count() == 1
    members = ann.client.get(batch["computations"], headers=ann.headers).json()["items"]
    assert sorted(row["inputs"]["x"] for row in members) == ["1", "2", "3", "4"]
    wrong = problem(ann.post("/batches", {**body, "vary": "z"}), 422, "invalid")
    assert wrong["errors"][0]["pointer"] == "#/vary"
    too_many = problem(ann.post("/batches", {**body, "stop": 5000}), 422, "invalid")
    assert too_many["errors"] and Batch.objects.count() == 1


def test_a_tokens_own_limit_and_the_queue_cap_hold(people, ann, settings):
    settings.API_TOKEN_RATE_LIMIT = "2/m"
    body = {"operation": "add", "inputs": {"x": 1, "y": 1}}
    assert [ann.post("/computations", body).status_code for _ in range(2)] == [201, 201]
    limited = problem(ann.post("/computations", body), 429, "rate-limited")
    assert "Too many submissions" in limited["detail"]
    assert program(people["ann"]).post("/computations", body).status_code == 201, "each token has its own"
    settings.API_TOKEN_RATE_LIMIT = "1000/m"
    settings.COMPUTATION_MAX_QUEUED = 3
    batch = {"operation": "add", "vary": "x", "start": 1, "stop": 5, "step": 1, "inputs": {"y": 1}}
    full = problem(program(people["bob"]).post("/batches", batch), 503, "queue-full")
    assert full["detail"].startswith("The queue has room") and Computation.objects.count() == 3


def test_schedules_through_the_api(people, ann):
    body = {"name": "hourly sum", "operation": "add", "inputs": {"x": 1, "y": 2}, "kind": "every", "every": 2}
    made = ann.post("/schedules", {**body, "unit": "hours"})
    assert made.status_code == 201, made.content
    schedule = made.json()
    assert schedule["every"] == 2 and schedule["unit"] == "hours" and schedule["catch_up"] is True
    assert [row["id"] for row in ann.get("/schedules").json()] == [schedule["id"]]
    paused = ann.post(f"/schedules/{schedule['id']}/pause").json()
    assert paused["paused"] is True and paused["changed"] is True
    run = ann.post(f"/schedules/{schedule['id']}/run").json()["run"]
    assert run["manual"] is True and Computation.objects.filter(pk=run["computation"]).exists()
    problem(ann.post("/schedules", {**body, "kind": "cron", "cron": "not cron"}), 422, "invalid")
    problem(program(people["bob"]).get(f"/schedules/{schedule['id']}"), 404, "not-found")
    assert ann.delete(f"/schedules/{schedule['id']}").status_code == 204
    problem(ann.get(f"/schedules/{schedule['id']}"), 404, "not-found")


def test_operators_controls_need_an_operators_token(people, ann):
    problem(ann.get("/workers"), 403, "operators-only")
    problem(ann.post("/queues/instant/pause"), 403, "operators-only")
    operator = program(people["sam"])
    paused = operator.post("/queues/instant/pause")
    assert paused.json() == {"queue": "instant", "paused": True, "changed": True, "cancelled": None, "messages": None}
    assert operator.post("/queues/instant/resume").json()["changed"] is True
    problem(operator.post("/queues/nowhere/pause"), 422, "invalid")
    assert AuditEntry.objects.filter(token_name="script", action=AuditEntry.Action.PAUSE).count() == 1


def test_the_document_and_its_page():
    document = Client().get(V1 + "/openapi.json")
    assert document.status_code == 200
    spec = document.json()
    assert spec["openapi"].startswith("3.1") and "/api/v1/computations" in spec["paths"]
    assert spec["components"]["securitySchemes"] == {"Caller": {"type": "http", "scheme": "bearer"}}
    page = Client().get(V1 + "/docs")
    assert page.status_code == 200 and "script-src 'self'" in page["Content-Security-Policy"]
    html = page.content.decode()
    assert "swagger-ui-bundle" in html and "https://" not in html.split("<body")[1], "no CDN"


def test_the_create_api_token_command_prints_the_token_once(people, capsys):
    call_command("create_api_token", "ann", "deploys", "--read-only", "--expires-days", "30")
    token = capsys.readouterr().out.strip().splitlines()[-1]
    row = ApiToken.objects.get(name="deploys")
    assert row.read_only and row.expires_at > timezone.now() + timedelta(days=29)
    assert row.key_hash == hashlib.sha256(token.encode()).hexdigest()
    assert Program(token).get("/computations").status_code == 200


def test_a_person_makes_and_revokes_tokens_on_their_page(people):
    page = reverse("api-tokens")
    anonymous = Client().get(page)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith(reverse("login"))
    browser = Client()
    browser.force_login(people["ann"])
    made = browser.post(page, {"name": "laptop", "read_only": "on", "expires": "30"})
    assert made.status_code == 201 and "no-store" in made["Cache-Control"]
    token = re.search(r"cdt_[\w-]+", made.content.decode()).group()
    row = ApiToken.objects.get(user=people["ann"])
    assert row.read_only and row.key_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in browser.get(page).content.decode(), "shown once"
    assert browser.post(page, {"name": ""}).status_code == 422 and ApiToken.objects.count() == 1
    bob = Client()
    bob.force_login(people["bob"])
    assert bob.post(reverse("api-token-revoke", args=[row.pk])).status_code == 404
    assert browser.get(reverse("api-token-revoke", args=[row.pk])).status_code == 405
    assert browser.post(reverse("api-token-revoke", args=[row.pk])).status_code == 303
    assert not ApiToken.objects.exists()
    problem(Program(token).get("/computations"), 401, "unauthorized")


def test_staff_make_a_token_in_the_admin_and_see_it_once(people, admin_client):
    added = admin_client.post(
        reverse("admin:tasks_apitoken_add"),
        {"user": people["bob"].pk, "name": "report", "expires_at_0": ""},
        follow=True,
    )
    token = re.search(r"cdt_[\w-]+", added.content.decode()).group()
    row = ApiToken.objects.get(name="report")
    assert row.user == people["bob"] and row.key_hash == hashlib.sha256(token.encode()).hexdigest()
    assert Program(token).get("/computations").status_code == 200
    listed = admin_client.get(reverse("admin:tasks_apitoken_changelist")).content.decode()
    assert "report" in listed and token not in listed
    change = admin_client.post(
        reverse("admin:tasks_apitoken_change", args=[row.pk]), {"name": "x", "user": row.user_id}
    )
    assert change.status_code == 403 and ApiToken.objects.get(pk=row.pk).name == "report", "never edited"


def test_webhooks_through_the_api(people, ann, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["hooks.example.com"]
    problem(ann.post("/webhooks", {"url": "https://elsewhere.example.org/hook"}), 422, "invalid")
    problem(Program(None).get("/webhooks"), 401, "unauthorized")
    made = ann.post("/webhooks", {"url": "https://hooks.example.com/ann"})
    assert made.status_code == 201 and made.json()["secret"].startswith("whsec_")
    webhook = made.json()
    assert made["Location"] == f"{V1}/webhooks/{webhook['id']}"
    assert [each["url"] for each in ann.get("/webhooks").json()] == ["https://hooks.example.com/ann"]
    read = ann.get(f"/webhooks/{webhook['id']}").json()
    assert read["deliveries"] == [] and "secret" not in read
    problem(program(people["bob"]).get(f"/webhooks/{webhook['id']}"), 404, "not-found")
    assert ann.delete(f"/webhooks/{webhook['id']}").status_code == 204
    assert ann.get("/webhooks").json() == []


def test_a_clients_share_of_the_queue_holds_exactly_near_its_cap(ann, settings):
    """Far from the cap a client's room comes from the cache, less each submission; near it, it is counted."""
    settings.COMPUTATION_MAX_QUEUED_PER_CLIENT = 103
    body = {"operation": "add", "inputs": {"x": 1, "y": 1}}
    assert [ann.post("/computations", body).status_code for _ in range(3)] == [201, 201, 201]
    batch = {"operation": "add", "vary": "x", "start": 1, "stop": 100, "step": 1, "inputs": {"y": 1}}
    assert ann.post("/batches", batch).status_code == 201
    full = problem(ann.post("/computations", body), 429, "queue-full")
    assert "One person may have 103" in full["detail"] and Computation.objects.count() == 103
