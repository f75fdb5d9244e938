"""Webhooks: deliveries made by a real worker to a real receiver on 127.0.0.1 and checked there by their signature,
tried again until a failing receiver answers, batch.ended sent once; registration refusing hosts and addresses a
delivery may not reach, having written nothing; and the pages, a person's own."""

import contextlib
import datetime
import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.conf import settings as configured
from django.urls import reverse
from django.utils import timezone

from tasks import retention, services
from tasks.models import Batch, Computation, Status, Webhook, WebhookDelivery
from tasks.operations import REGISTRY
from tasks.webhooks import delivering, posting, registering, signing
from tests import factories
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db

ADD = REGISTRY["add"]
PAST = datetime.timedelta(seconds=1)


class Receiver:
    """An HTTP server on 127.0.0.1, on a free port in a thread of its own: it records every request (its headers and
    body) and answers each with the next of `statuses`, the last one repeating."""

    def __init__(self, statuses: tuple[int, ...] = (200,)):
        self.statuses = list(statuses)
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append((dict(self.headers.items()), body))
                status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}/hooks?from=dashboard"

    def bodies(self) -> list[dict]:
        return [json.loads(body) for _, body in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture
def loopback_allowed(settings) -> None:
    """The receiver's host and network allowed, as an operator would allow an internal receiver's."""
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def due_again(delivery: WebhookDelivery) -> None:
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - PAST)


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
@pytest.mark.usefixtures("celery_worker", "loopback_allowed")
def test_a_worker_delivers_a_signed_computation_ended_to_a_local_receiver(receiver):
    ann = factories.person("ann")
    hook, secret = registering.register(ann, receiver.url)
    computation = services.submit(operation=ADD, inputs=ADD.parse_inputs({"x": "2", "y": "3"}), owner=ann)

    wait_for(lambda: WebhookDelivery.objects.filter(status=WebhookDelivery.Status.DELIVERED).exists())
    [(headers, body)] = receiver.requests
    assert signing.verify(secret, headers, body), "the receiver checks the signature with the secret shown once"
    delivery = WebhookDelivery.objects.get()
    assert (delivery.webhook, delivery.event, delivery.attempts, delivery.last_status_code) == (
        hook,
        "computation.ended",
        1,
        200,
    )
    assert headers["webhook-id"] == str(delivery.delivery_id)
    assert headers["Host"] == f"127.0.0.1:{receiver.port}" and headers["Content-Type"] == "application/json"
    payload = json.loads(body)
    assert payload["type"] == "computation.ended" and payload["timestamp"].endswith("Z")
    data = payload["data"]
    assert (data["id"], data["operation"], data["inputs"], data["status"], data["result"], data["error"]) == (
        computation.pk,
        "add",
        {"x": "2", "y": "3"},
        "succeeded",
        "5",
        None,
    )
    assert data["url"] == f"/computations/{computation.pk}/" and data["finished_at"]


@pytest.mark.usefixtures("loopback_allowed")
def test_a_receiver_that_fails_three_times_gets_the_delivery_on_the_fourth_try(receiver):
    receiver.statuses = [500, 500, 500, 200]
    hook = factories.webhook(factories.person("ann"), receiver.url)
    delivery = factories.delivery(hook)

    for attempt in range(1, 4):
        assert delivering.deliver_due() == 1
        assert delivering.deliver_due() == 0, "not due again before its wait"
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", attempt, 500)
        assert delivery.next_attempt_at > timezone.now()
        due_again(delivery)
    assert delivering.deliver_due() == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 4, 200)
    assert delivery.next_attempt_at is None and delivery.delivered_at is not None
    assert [headers["webhook-id"] for headers, _ in receiver.requests] == [str(delivery.delivery_id)] * 4
    assert all(signing.verify(hook.secret, headers, body) for headers, body in receiver.requests)
    assert {body for _, body in receiver.requests} == {receiver.requests[0][1]}, "the same body every time"
    assert delivering.deliver_due() == 0


@pytest.mark.usefixtures("loopback_allowed")
def test_an_attempt_without_an_answer_is_recorded_and_tried_again_until_its_day_is_over():
    hook = factories.webhook(factories.person("ann"), f"http://127.0.0.1:{free_port()}/")
    delivery = factories.delivery(hook)
    assert delivering.deliver_due() == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, None)
    assert "refused" in delivery.last_error.lower()
    wait = delivery.next_attempt_at - timezone.now()
    assert datetime.timedelta(seconds=25) < wait <= datetime.timedelta(seconds=30)

    WebhookDelivery.objects.filter(pk=delivery.pk).update(created_at=timezone.now() - datetime.timedelta(hours=25))
    due_again(delivery)
    assert delivering.deliver_due() == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 2, None)
    assert delivering.deliver_due() == 0


@pytest.mark.usefixtures("loopback_allowed")
def test_a_delivery_names_its_host_and_connects_to_the_address_checked(receiver):
    """localhost resolves to ::1 and 127.0.0.1: only the allowed one is connected to, the name goes in Host."""
    hook = factories.webhook(factories.person("ann"), f"http://localhost:{receiver.port}/in")
    factories.delivery(hook)
    assert delivering.deliver_due() == 1
    [(headers, _)] = receiver.requests
    assert headers["Host"] == f"localhost:{receiver.port}"
    assert WebhookDelivery.objects.get().status == "delivered"


def test_a_host_no_longer_allowed_gets_nothing(settings, receiver):
    settings.WEBHOOK_ALLOWED_HOSTS = ["hooks.example.com"]
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    delivery = factories.delivery(factories.webhook(factories.person("ann"), receiver.url))
    assert delivering.deliver_due() == 1
    delivery.refresh_from_db()
    assert receiver.requests == []
    assert delivery.status == "pending" and "only to the hosts" in delivery.last_error


@pytest.mark.usefixtures("loopback_allowed")
def test_a_receiver_that_trickles_its_answer_is_cut_at_the_deadline(monkeypatch):
    monkeypatch.setattr(posting, "DEADLINE_SECONDS", 1)
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def trickle() -> None:
        connection, _ = listener.accept()
        with connection, contextlib.suppress(OSError):  # the client shuts its end at the deadline
            for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n":
                if stop.wait(0.3):
                    return
                connection.send(bytes([byte]))

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
    delivery = factories.delivery(factories.webhook(factories.person("ann"), url))
    started = time.monotonic()
    try:
        assert delivering.deliver_due() == 1
    finally:
        stop.set()
        thread.join()
        listener.close()
    assert time.monotonic() - started < 3
    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_error) == ("pending", "No answer within 1 seconds.")


@pytest.mark.usefixtures("loopback_allowed")
def test_over_https_tls_gets_the_host_name_and_checks_its_certificate(tmp_path: Path):
    """A self-signed certificate for localhost: the server sees the name in TLS (SNI), and the attempt fails on the
    certificate, which no authority signed."""
    key, certificate = tmp_path / "key.pem", tmp_path / "cert.pem"
    request = "-x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost -addext subjectAltName=DNS:localhost"
    subprocess.run(
        ["openssl", "req", *request.split(), "-keyout", key, "-out", certificate], check=True, capture_output=True
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    names: list[str | None] = []
    context.sni_callback = lambda tls, name, _: names.append(name)
    listener = socket.create_server(("127.0.0.1", 0))

    def handshake() -> None:
        connection, _ = listener.accept()
        try:
            context.wrap_socket(connection, server_side=True).close()
        except (ssl.SSLError, OSError):
            connection.close()  # the client refused the certificate

    thread = threading.Thread(target=handshake, daemon=True)
    thread.start()
    url = f"https://localhost:{listener.getsockname()[1]}/"
    delivery = factories.delivery(factories.webhook(factories.person("ann"), url))
    try:
        assert delivering.deliver_due() == 1
    finally:
        thread.join(5)
        listener.close()
    delivery.refresh_from_db()
    assert names == ["localhost"]
    assert delivery.status == "pending" and "CERTIFICATE_VERIFY_FAILED" in delivery.last_error


def test_batch_ended_is_sent_once_by_the_end_of_its_last_computation(django_capture_on_commit_callbacks):
    ann = factories.person("ann")
    hook = factories.webhook(ann)
    batch = factories.batch(Status.QUEUED, size=2, owner=ann)
    first, second = batch.computations.order_by("pk")

    def end(computation: Computation) -> list[str]:
        """The events of the deliveries that ending `computation` (cancelling it) created."""
        before = set(WebhookDelivery.objects.values_list("pk", flat=True))
        with django_capture_on_commit_callbacks(execute=True):
            assert Computation.objects.filter(pk=computation.pk).cancel() == 1
        return sorted(WebhookDelivery.objects.exclude(pk__in=before).values_list("event", flat=True))

    assert end(first) == ["computation.ended"]
    assert Batch.objects.get().ended_at is None
    assert end(second) == ["batch.ended", "computation.ended"]
    batch.refresh_from_db()
    assert batch.ended_at is not None
    sent = WebhookDelivery.objects.get(event="batch.ended")
    assert sent.webhook == hook
    data = sent.payload["data"]
    assert (data["id"], data["operation"], data["size"]) == (batch.pk, "add", 2)
    assert data["counts"] == {
        "waiting": 0,
        "queued": 0,
        "running": 0,
        "succeeded": 0,
        "failed": 0,
        "cancelled": 2,
        "not_run": 0,
    }

    Computation.objects.filter(pk=second.pk).requeue()
    assert end(second) == ["computation.ended"], "a batch ends once"


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
@pytest.mark.usefixtures("celery_worker", "loopback_allowed")
def test_a_batch_run_by_the_worker_sends_one_batch_ended(receiver):
    ann = factories.person("ann")
    registering.register(ann, receiver.url)
    batch = services.submit_batch(
        operation=ADD, varied="x", start=1, stop=4, step=1, fixed=ADD.parse_inputs({"x": "0", "y": "1"}), owner=ann
    )
    delivered = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.DELIVERED)
    wait_for(lambda: delivered.count() == 5)
    assert sorted(body["type"] for body in receiver.bodies()) == ["batch.ended"] + ["computation.ended"] * 4
    [ended] = [body["data"] for body in receiver.bodies() if body["type"] == "batch.ended"]
    assert (ended["id"], ended["size"], ended["counts"]["succeeded"]) == (batch.pk, 4, 4)
    assert WebhookDelivery.objects.count() == 5


def test_a_computation_of_no_one_or_of_someone_without_webhooks_delivers_nothing(django_capture_on_commit_callbacks):
    factories.webhook(factories.person("ann"))
    bob = factories.person("bob")
    for owner in (None, bob):
        computation = factories.computation(Status.RUNNING, owner=owner)
        with django_capture_on_commit_callbacks(execute=True):
            Computation.objects.filter(pk=computation.pk).succeed(attempt=1, result="3")
    assert not WebhookDelivery.objects.exists()


@pytest.mark.usefixtures("loopback_allowed")
def test_registration_refuses_a_host_not_allowed_and_addresses_a_delivery_may_not_reach(settings):
    ann = factories.person("ann")
    database = configured.DATABASES["default"]
    refusals = {
        "https://hooks.example.com/in": "only to the hosts",
        f"http://127.0.0.1:{int(database['PORT'] or 3306)}/": "one of this dashboard's own services",
        "http://127.0.0.1:5555/flower/": "kept for this dashboard's own services",
        "ftp://127.0.0.1/": "http:// or https://",
    }
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1", "localhost", "169.254.169.254"]
    refusals["http://169.254.169.254/latest/meta-data/"] = "internal address"
    for url, message in refusals.items():
        with pytest.raises(registering.Refused) as refused:
            registering.register(ann, url)
        assert message in refused.value.message, url
    settings.WEBHOOK_ALLOWED_HOSTS = []
    with pytest.raises(registering.Refused, match="turned off"):
        registering.register(ann, "http://127.0.0.1:8080/")
    assert not Webhook.objects.exists()


@pytest.mark.usefixtures("loopback_allowed")
def test_a_person_has_one_webhook_per_url_and_at_most_the_cap(settings):
    settings.WEBHOOK_MAX_PER_PERSON = 2
    ann = factories.person("ann")
    webhook, secret = registering.register(ann, "http://127.0.0.1:8080/a")
    assert webhook.secret == secret and secret.startswith("whsec_")
    with pytest.raises(registering.Refused, match="already"):
        registering.register(ann, "http://127.0.0.1:8080/a")
    registering.register(ann, "http://127.0.0.1:8080/b")
    with pytest.raises(registering.Refused, match="You have 2 webhooks already"):
        registering.register(ann, "http://127.0.0.1:8080/c")
    assert registering.register(factories.person("bob"), "http://127.0.0.1:8080/a")[0].owner.username == "bob"
    assert [hook.url for hook in registering.owned_by(ann)] == ["http://127.0.0.1:8080/b", "http://127.0.0.1:8080/a"]


@pytest.mark.usefixtures("loopback_allowed")
def test_the_page_registers_a_webhook_and_shows_its_secret_once(people):
    ann = factories.signed_in(people["ann"])
    page = ann.get(reverse("webhooks"))
    assert page.status_code == 200 and "No webhooks yet." in page.text and 'name="url"' in page.text

    registered = ann.post(reverse("webhooks"), {"url": "http://127.0.0.1:8080/in"})
    assert registered.status_code == 201
    webhook = Webhook.objects.get()
    assert webhook.owner == people["ann"] and webhook.secret in registered.text
    assert "no-store" in registered["Cache-Control"]
    for url in (reverse("webhooks"), webhook.get_absolute_url()):
        shown = ann.get(url)
        assert shown.status_code == 200 and "http://127.0.0.1:8080/in" in shown.text
        assert webhook.secret not in shown.text

    refused = ann.post(reverse("webhooks"), {"url": "http://169.254.169.254/"})
    assert refused.status_code == 422 and "only to the hosts" in refused.text
    assert Webhook.objects.count() == 1


def test_the_page_says_when_webhooks_are_off(settings, people):
    settings.WEBHOOK_ALLOWED_HOSTS = []
    page = factories.signed_in(people["ann"]).get(reverse("webhooks"))
    assert "Webhooks are turned off on this dashboard" in page.text and 'name="url"' not in page.text


def test_a_webhooks_page_shows_its_delivery_log_and_removes_it(people):
    ann = factories.signed_in(people["ann"])
    webhook = factories.webhook(people["ann"])
    failed = factories.delivery(webhook, status="failed", attempts=9, last_error="Connection refused")
    delivered = factories.delivery(webhook, status="delivered", attempts=1, last_status_code=204)
    page = ann.get(webhook.get_absolute_url()).text
    for delivery in (failed, delivered):
        assert str(delivery.delivery_id) in page
    assert "Connection refused" in page and "204" in page and "computation.ended" in page
    assert page.index(str(delivered.delivery_id)) < page.index(str(failed.delivery_id)), "the newest first"

    removed = ann.post(reverse("webhook-remove", args=[webhook.pk]))
    assert removed.status_code == 303 and removed["Location"] == reverse("webhooks")
    assert not Webhook.objects.exists() and not WebhookDelivery.objects.exists()


def test_another_persons_webhook_is_not_found(people):
    webhook = factories.webhook(people["ann"])
    bob = factories.signed_in(people["bob"])
    assert bob.get(webhook.get_absolute_url()).status_code == 404
    assert bob.post(reverse("webhook-remove", args=[webhook.pk])).status_code == 404
    assert webhook.url not in bob.get(reverse("webhooks")).text
    assert Webhook.objects.filter(pk=webhook.pk).exists()


@pytest.mark.parametrize("accounts", [False, True])
def test_a_visitor_who_is_not_signed_in_is_sent_to_sign_in(client, settings, people, accounts):
    settings.DASHBOARD_LOGIN_REQUIRED = accounts
    webhook = factories.webhook(people["ann"])
    for method, url in [
        ("get", reverse("webhooks")),
        ("post", reverse("webhooks")),
        ("get", webhook.get_absolute_url()),
        ("post", reverse("webhook-remove", args=[webhook.pk])),
    ]:
        answer = getattr(client, method)(url, {"url": "http://127.0.0.1:8080/"} if method == "post" else {})
        assert answer.status_code == 302 and answer["Location"].startswith(reverse("login")), (method, url)
    assert list(Webhook.objects.values_list("pk", flat=True)) == [webhook.pk]


@pytest.mark.usefixtures("loopback_allowed")
def test_a_get_changes_nothing(people):
    ann = factories.signed_in(people["ann"])
    webhook = factories.webhook(people["ann"])
    assert ann.get(reverse("webhook-remove", args=[webhook.pk])).status_code == 405
    assert ann.get(reverse("webhooks"), {"url": "http://127.0.0.1:8080/in"}).status_code == 200
    assert list(Webhook.objects.all()) == [webhook]


def test_the_account_links_lead_to_the_webhooks_page(people):
    page = factories.signed_in(people["ann"]).get(reverse("dashboard")).text
    assert f'href="{reverse("webhooks")}"' in page


def test_the_admin_never_shows_a_secret(admin_client, people):
    webhook = factories.webhook(people["ann"])
    factories.delivery(webhook)
    for url in (
        reverse("admin:tasks_webhook_changelist"),
        reverse("admin:tasks_webhook_change", args=[webhook.pk]),
        reverse("admin:tasks_webhookdelivery_changelist"),
    ):
        page = admin_client.get(url)
        assert page.status_code == 200 and webhook.url in page.text and webhook.secret not in page.text


def test_deliveries_older_than_a_week_are_pruned():
    webhook = factories.webhook(factories.person("ann"))
    old = factories.delivery(webhook, created_at=timezone.now() - datetime.timedelta(days=8))
    recent = factories.delivery(webhook, created_at=timezone.now() - datetime.timedelta(days=6))
    retention.prune()
    assert list(WebhookDelivery.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not WebhookDelivery.objects.filter(pk=old.pk).exists()
