"""Routing by kind, paused queues, purges, the Workers page and its controls, against the real broker and
database (tests/stack runs the same on real worker processes)."""

import json
import re
import time

import pytest
from django.test import Client
from django.urls import reverse

from tasks import control, jobs, presence, queues, services
from tasks.celery import app
from tasks.models import AuditEntry, Computation, Status
from tasks.operations import REGISTRY
from tasks.redis_clients import durable
from tests import factories
from tests.helpers import HTMX, wait_for
from tools.ports import free_ports

pytestmark = pytest.mark.django_db(transaction=True)

ACTOR = services.Actor(source=AuditEntry.Source.DASHBOARD, address="192.0.2.1")


@pytest.fixture
def paused():
    """Both queues paused for every worker (the session's worker in threads included), resumed after."""
    for name in queues.NAMES:
        control.pause(name, ACTOR)
    # The broadcast is asynchronous: wait until no worker answers that it takes from either queue.
    wait_for(
        lambda: (
            not any(
                queue["name"] in queues.NAMES
                for answer in (app.control.inspect(timeout=1).active_queues() or {}).values()
                for queue in answer
            )
        ),
        timeout=10,
        interval=0.2,
    )
    yield
    for name in queues.NAMES:
        control.resume(name, ACTOR)
        durable().delete(name)


def record(name: str, *, heartbeat: float, stopped: bool = False, concurrency: int = 2) -> None:
    """A worker's heartbeat record, as tasks.presence.Presence writes it."""
    durable().hset(
        presence.WORKERS_KEY,
        name,
        json.dumps(
            {
                "name": name,
                "host": "host-1",
                "pid": 42,
                "queues": ["heavy"],
                "consuming": ["heavy"],
                "concurrency": concurrency,
                "max_concurrency": 8,
                "busy": 1,
                "processed": 7,
                "started": heartbeat - 100,
                "heartbeat": heartbeat,
                "stopped": stopped,
                "versions": {"celery": "5", "django": "6", "python": "3"},
            }
        ),
    )


def test_each_operation_and_amount_of_work_goes_to_one_queue_and_rows_of_agrees():
    expected = {}
    for name, spec in REGISTRY.items():
        for work_seconds in (0, 2):
            inputs = {each.name: "2" for each in spec.inputs}
            pk = factories.computation(operation=name, inputs=inputs, work_seconds=work_seconds).pk
            expected[pk] = queues.for_computation(name, work_seconds)
            assert expected[pk] == (queues.INSTANT if spec.is_instant(work_seconds) else queues.HEAVY)
    assert set(expected.values()) == {queues.INSTANT, queues.HEAVY}
    for queue in queues.NAMES:
        found = set(Computation.objects.filter(queues.rows_of(queue)).values_list("pk", flat=True))
        assert found == {pk for pk, each in expected.items() if each == queue}


PRIMES = queues.Queue("primes", "Primes", operations=("count_primes",), concurrency=1)


@pytest.fixture
def third_queue(monkeypatch, celery_worker):
    """A third queue declared, before the heavy one, as one entry of tasks.queues.QUEUES; the session's worker told
    to take from it too, as a worker started for it would."""
    declared = (*queues.QUEUES[:-1], PRIMES, queues.QUEUES[-1])
    monkeypatch.setattr(queues, "QUEUES", declared)
    monkeypatch.setattr(queues, "NAMES", tuple(queue.name for queue in declared))
    monkeypatch.setattr(queues, "BY_NAME", {queue.name: queue for queue in declared})
    app.control.add_consumer(PRIMES.name, destination=[celery_worker.hostname], reply=True, timeout=5)
    yield PRIMES
    app.control.cancel_consumer(PRIMES.name, destination=[celery_worker.hostname], reply=True, timeout=5)
    durable().delete(PRIMES.name)


def test_a_third_queue_is_one_entry_routed_shown_and_served(third_queue, operator_client):
    assert queues.for_computation("count_primes", 0) == "primes" == queues.for_computation("count_primes", 3)
    assert queues.for_computation("factorize", 0) == queues.HEAVY and queues.for_computation("add", 0) == queues.INSTANT
    computation = services.submit(operation=REGISTRY["count_primes"], inputs={"n": 100})
    assert set(Computation.objects.filter(queues.rows_of("primes")).values_list("pk", flat=True)) == {computation.pk}
    assert not Computation.objects.filter(queues.rows_of(queues.HEAVY), pk=computation.pk).exists()

    def ended() -> Computation | None:
        computation.refresh_from_db()
        return computation if not computation.is_in_flight else None

    assert wait_for(ended, timeout=30).status == Status.SUCCEEDED and computation.result == "25"
    page = operator_client.get(reverse("workers")).content.decode()
    assert "Primes" in page
    metrics = operator_client.get(reverse("metrics"), HTTP_X_DASHBOARD_LISTENER="monitoring").content.decode()
    assert gauge(metrics, 'dashboard_queue_depth{queue="primes"}') == 0
    listing = operator_client.get(reverse("api-workers")).json()
    assert {queue["name"] for queue in listing["queues"]} == {"instant", "primes", "heavy"}


@pytest.mark.usefixtures("paused")
def test_a_submission_waits_in_its_own_queue_which_says_how_old_its_oldest_is(client):
    before = time.time()
    client.post(reverse("computations"), {"operation": "add", "x": "1", "y": "2"})
    client.post(reverse("computations"), {"operation": "factorize", "n": "12", "work_seconds": "0"})
    client.post(reverse("computations"), {"operation": "add", "x": "1", "y": "2", "work_seconds": "1"})
    figures = {each.name: each for each in queues.figures()}
    assert (figures["instant"].depth, figures["heavy"].depth) == (1, 2)
    assert figures["instant"].paused and figures["heavy"].paused
    assert before <= figures["heavy"].oldest_sent_at.timestamp() <= time.time()
    assert figures["heavy"].oldest_age() < 30
    # Messages in this minute count in the next minutes' rates.
    minute = durable().hgetall(f"{queues.MINUTE_KEY}{int(time.time() // 60)}")
    assert (int(minute[b"in:instant"]), int(minute[b"in:heavy"])) == (1, 2)
    assert Computation.objects.filter(status=Status.QUEUED).count() == 3


@pytest.mark.usefixtures("paused")
def test_a_purge_asks_first_then_cancels_what_waits_in_the_queue_and_drops_its_messages(operator_client):
    heavy = [services.submit(operation=REGISTRY["factorize"], inputs={"n": 12 + n}).pk for n in range(3)]
    instant = services.submit(operation=REGISTRY["add"], inputs={"x": 1, "y": 2}).pk
    url = reverse("queue-purge", args=["heavy"])
    question = operator_client.get(url)
    assert question.status_code == 200 and "3 computations wait in it now" in question.content.decode()
    assert Computation.objects.filter(pk__in=heavy, status=Status.QUEUED).count() == 3, "a GET changes nothing"
    done = operator_client.post(url, follow=True)
    assert "3 computations cancelled from the Heavy queue." in done.content.decode()
    assert set(Computation.objects.filter(pk__in=heavy).values_list("status", flat=True)) == {Status.CANCELLED}
    assert Computation.objects.get(pk=instant).status == Status.QUEUED
    assert dict(queues.depths()) == {"instant": 1, "heavy": 0}
    (entry,) = AuditEntry.objects.filter(action=AuditEntry.Action.PURGE)
    assert (entry.selection, entry.requested, entry.changed) == ({"queue": "heavy"}, 3, 3)
    assert set(entry.computations.values_list("pk", flat=True)) == set(heavy)


def test_pause_and_resume_are_posts_remembered_audited_and_shown_on_the_dashboard(operator_client):
    pause, resume = reverse("queue-action", args=["heavy", "pause"]), reverse("queue-action", args=["heavy", "resume"])
    assert operator_client.get(pause).status_code == 405
    assert Client(enforce_csrf_checks=True).post(pause).status_code == 403
    try:
        answer = operator_client.post(pause)
        assert answer.status_code == 303 and answer["Location"] == reverse("workers")
        assert queues.paused() == {"heavy"}
        assert "Paused: Heavy." in operator_client.get(reverse("dashboard")).content.decode()
        section = operator_client.post(resume, **HTMX)
        assert section.status_code == 200 and "The Heavy queue is running again." in section.content.decode()
        assert queues.paused() == set()
        assert "Paused:" not in operator_client.get(reverse("dashboard")).content.decode()
    finally:
        queues.set_paused("heavy", False)
    actions = list(AuditEntry.objects.order_by("pk").values_list("action", "selection", "address"))
    assert actions == [("pause", {"queue": "heavy"}, "127.0.0.1"), ("resume", {"queue": "heavy"}, "127.0.0.1")]
    assert operator_client.post(reverse("queue-action", args=["nowhere", "pause"])).status_code == 404
    assert operator_client.post(reverse("queue-action", args=["heavy", "explode"])).status_code == 404


def test_the_page_shows_workers_from_their_heartbeats_lost_after_a_minute_then_forgotten(operator_client, settings):
    now = time.time()
    record("fresh@host-1", heartbeat=now)
    record("quiet@host-1", heartbeat=now - settings.WORKER_LOST_AFTER_SECONDS - 5)
    record("gone@host-1", heartbeat=now - settings.WORKER_FORGET_AFTER_SECONDS - 5)
    record("done@host-1", heartbeat=now - 10, stopped=True)
    page = operator_client.get(reverse("workers")).content.decode()
    assert 'data-worker="fresh@host-1" data-state="online"' in page
    assert 'data-worker="quiet@host-1" data-state="lost"' in page
    assert 'data-worker="done@host-1" data-state="stopped"' in page
    assert "gone@host-1" not in page and not durable().hexists(presence.WORKERS_KEY, "gone@host-1")
    running = factories.computation(
        Status.RUNNING, operation="factorize", inputs={"n": "360"}, worker="fresh@host-1", progress=40
    )
    assert f'href="/computations/{running.pk}/"' in operator_client.get(reverse("workers")).content.decode()


def test_a_poll_of_the_page_answers_304_until_something_it_shows_changes(operator_client):
    record("fresh@host-1", heartbeat=time.time())
    first = operator_client.get(reverse("workers"), **HTMX)
    assert first.status_code == 200 and 'id="workers-section"' in first.content.decode()
    assert "<html" not in first.content.decode()
    # The session's worker in threads may be online beside the one recorded here, its record changing as it ends
    # what earlier tests left it: once nothing changes, a poll answers 304.
    etag = wait_for(lambda: _unchanged_etag(operator_client))
    record("fresh@host-1", heartbeat=time.time(), concurrency=3)  # a heartbeat that says something new
    assert operator_client.get(reverse("workers"), HTTP_IF_NONE_MATCH=etag, **HTMX).status_code == 200


def _unchanged_etag(client: Client) -> str | None:
    """The section's ETag when a poll with it answers 304, else None."""
    etag = client.get(reverse("workers"), **HTMX)["ETag"]
    return etag if client.get(reverse("workers"), HTTP_IF_NONE_MATCH=etag, **HTMX).status_code == 304 else None


def test_worker_controls_are_audited_and_refused_where_they_cannot_apply(operator_client):
    now = time.time()
    record("busy@host-1", heartbeat=now)
    record("small@host-1", heartbeat=now, concurrency=1)
    record("done@host-1", heartbeat=now, stopped=True)
    assert operator_client.post(reverse("worker-action", args=["busy@host-1", "grow"])).status_code == 303
    assert operator_client.post(reverse("worker-action", args=["small@host-1", "shrink"]), **HTMX).status_code == 409
    assert operator_client.post(reverse("worker-action", args=["done@host-1", "shutdown"]), **HTMX).status_code == 409
    assert operator_client.post(reverse("worker-action", args=["nobody@host-1", "grow"])).status_code == 404
    entries = list(AuditEntry.objects.values_list("action", "selection"))
    assert entries == [("grow", {"worker": "busy@host-1"})]


def test_the_json_api_lists_and_steers_queues_and_workers(operator_client):
    durable().delete(presence.WORKERS_KEY)  # records of earlier runs
    record("fresh@host-1", heartbeat=time.time())
    listing = operator_client.get(reverse("api-workers")).json()
    # The session's worker in threads, on this machine, may be listed beside the one recorded here.
    names = [worker["name"] for worker in listing["workers"] if worker["name"].endswith("@host-1")]
    assert names == ["fresh@host-1"]
    assert {queue["name"] for queue in listing["queues"]} == {"instant", "heavy"}
    try:
        paused = operator_client.post(reverse("api-queue", args=["heavy", "pause"])).json()
        assert paused == {"queue": "heavy", "paused": True, "changed": True}
        assert AuditEntry.objects.get().source == AuditEntry.Source.API
    finally:
        operator_client.post(reverse("api-queue", args=["heavy", "resume"]))
    assert queues.paused() == set()
    assert operator_client.post(reverse("api-queue", args=["nowhere", "pause"])).status_code == 404
    assert operator_client.post(reverse("api-queue", args=["heavy", "explode"])).json() == {"error": "No such action."}


def test_the_admin_pauses_and_purges_after_asking(admin_client):
    page = reverse("admin:queues")
    assert "Queues and workers" in admin_client.get(reverse("admin:index")).content.decode()
    assert admin_client.get(page).status_code == 200
    try:
        assert admin_client.post(page, {"queue": "heavy", "action": "pause"}).status_code == 303
        assert queues.paused() == {"heavy"}
        question = admin_client.post(page, {"queue": "heavy", "action": "purge"})
        assert question.status_code == 200 and "Yes, purge the heavy queue" in question.content.decode()
        assert not AuditEntry.objects.filter(action=AuditEntry.Action.PURGE).exists()
        assert admin_client.post(page, {"queue": "heavy", "action": "purge", "confirm": "yes"}).status_code == 303
    finally:
        queues.set_paused("heavy", False)
    sources = set(AuditEntry.objects.values_list("action", "source"))
    assert sources == {("pause", "admin"), ("purge", "admin")}
    assert admin_client.post(page, {"queue": "nowhere", "action": "pause"}).status_code == 400


def gauge(text: str, line: str) -> float:
    return float(re.search(rf"^{re.escape(line)} (\S+)$", text, re.MULTILINE).group(1))


def test_metrics_give_each_queues_depth_and_age_and_the_workers(client):
    # The session's worker in threads (tests/integration/conftest.py) may be online beside this one.
    durable().delete(presence.WORKERS_KEY)
    record("fresh@host-1", heartbeat=time.time())
    text = client.get(reverse("metrics"), HTTP_X_DASHBOARD_LISTENER="monitoring").content.decode()
    assert 'dashboard_queue_depth{queue="heavy"}' in text
    assert 'dashboard_queue_oldest_age_seconds{queue="instant"}' in text
    assert gauge(text, "dashboard_workers_online") >= 1
    assert 'dashboard_worker_processes{state="busy",worker="fresh@host-1"} 1.0' in text


def test_metrics_count_workers_by_state_and_say_what_each_replica_reaches(client, settings):
    now = time.time()
    durable().delete(presence.WORKERS_KEY)  # records of earlier runs; the session's worker, online, may write again
    record("fresh@host-1", heartbeat=now)
    record("silent@host-2", heartbeat=now - settings.WORKER_LOST_AFTER_SECONDS - 5)
    record("done@host-3", heartbeat=now - settings.WORKER_LOST_AFTER_SECONDS - 5, stopped=True)
    durable().set(jobs.SWEEP_LAST, now - 30)
    text = client.get(reverse("metrics"), HTTP_X_DASHBOARD_LISTENER="monitoring").content.decode()
    assert gauge(text, 'dashboard_workers{state="online"}') >= 1
    assert gauge(text, 'dashboard_workers{state="lost"}') == gauge(text, 'dashboard_workers{state="stopped"}') == 1
    assert gauge(text, "dashboard_sweep_last_age_seconds") >= 30
    for dependency in ("database", "broker", "cache"):
        assert f'dashboard_dependency_up{{dependency="{dependency}"}} 1.0' in text
    # The cache unreachable: it says so, and every other figure is still there.
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{free_ports(1)[0]}/0"}}
    text = client.get(reverse("metrics"), HTTP_X_DASHBOARD_LISTENER="monitoring").content.decode()
    assert 'dashboard_dependency_up{dependency="cache"} 0.0' in text
    assert 'dashboard_workers{state="lost"} 1.0' in text and "dashboard_computations_in_flight" in text
