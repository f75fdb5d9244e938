"""One client's share of the capacity (the second audit's medium and low findings): a schedule's "run now" is a
submission on every door; a batch spends its size of the client's limit; what one person or address keeps waiting
is capped; schedules are capped per person or address and in all, and run no more often than their work allows;
the limits' counters live where filling the cache cannot reach them, and searches and deep pages are not kept."""

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from tasks import redis_clients, scheduling, services
from tasks.models import AuditEntry, Computation, Schedule, ScheduleRun
from tests import factories
from tests.helpers import HTMX

pytestmark = pytest.mark.django_db

ADD = {"operation": "add", "x": "1", "y": "2"}


def from_address(address: str) -> Client:
    """A client behind HAProxy (the test client's 127.0.0.1 is the trusted proxy) at `address`."""
    return Client(HTTP_X_FORWARDED_FOR=address)


def batch(client: Client, size: int):
    return client.post(reverse("batches"), {**ADD, "varied": "x", "start": "1", "stop": str(size), "step": "1"}, **HTMX)


def schedule(client: Client, **when: str):
    data = {"name": "s", "kind": "every", "every": "5", "unit": "minutes", **ADD} | when
    return client.post(reverse("schedules"), data, **HTMX)


def test_run_now_is_a_submission_on_every_door(settings, django_capture_on_commit_callbacks):
    settings.SUBMISSION_RATE_LIMIT = "2/h"  # an hour: a window cannot close between the requests
    made = factories.schedule(actor=services.Actor(source=AuditEntry.Source.DASHBOARD))
    operator = factories.signed_in(factories.operator())
    page, api = reverse("schedule-action", args=[made.pk, "run"]), reverse("api-schedule-action", args=[made.pk, "run"])
    with django_capture_on_commit_callbacks():
        assert operator.post(page).status_code == 303
        assert operator.post(api).status_code == 200
        refused_page, refused_api = operator.post(page), operator.post(api)
        operator.post(reverse("admin:tasks_schedule_changelist"), {"action": "run_now", "_selected_action": [made.pk]})
    assert refused_page.status_code == 429 and "Too many submissions from you" in refused_page.content.decode()
    assert refused_api.status_code == 429 and int(refused_api["Retry-After"]) >= 1
    assert ScheduleRun.objects.filter(schedule=made).count() == 2, "the admin's run was refused too"


def test_a_batch_spends_its_size_of_the_limit_and_a_refused_one_spends_nothing(
    settings, django_capture_on_commit_callbacks
):
    settings.SUBMISSION_RATE_LIMIT = "10/h"
    client = from_address("198.51.100.20")
    with django_capture_on_commit_callbacks():
        assert batch(client, 8).status_code == 200
        refused = batch(client, 5)
        singles = [client.post(reverse("computations"), ADD, **HTMX).status_code for _ in range(3)]
    assert refused.status_code == 429 and "Too many submissions from you" in refused.content.decode()
    assert singles == [200, 200, 429], "the refused batch of 5 left 2 of the 10"
    assert Computation.objects.count() == 10


def test_what_one_address_or_person_keeps_waiting_is_capped(settings, django_capture_on_commit_callbacks):
    settings.COMPUTATION_MAX_QUEUED_PER_CLIENT = 3  # no worker runs here: what is submitted stays queued
    one, other = from_address("198.51.100.21"), from_address("198.51.100.22")
    with django_capture_on_commit_callbacks():
        assert [one.post(reverse("computations"), ADD, **HTMX).status_code for _ in range(3)] == [200] * 3
        refused = one.post(reverse("computations"), ADD, **HTMX)
        refused_batch = batch(one, 2)
        assert other.post(reverse("computations"), ADD, **HTMX).status_code == 200, "another address has its own"
        person = from_address("198.51.100.21")
        person.force_login(factories.person())
        assert batch(person, 3).status_code == 200, "a signed-in person has their own, wherever they are"
        assert batch(person, 1).status_code == 429
    assert refused.status_code == 429 and "One person may have 3 computations waiting" in refused.content.decode()
    assert refused_batch.status_code == 429 and refused["Retry-After"] == "60"
    assert Computation.objects.filter(submitted_from="198.51.100.21").count() == 3
    assert Computation.objects.count() == 7


def test_a_schedules_runs_count_against_its_makers_share(settings):
    settings.COMPUTATION_MAX_QUEUED_PER_CLIENT = 1
    actor = services.Actor(source=AuditEntry.Source.DASHBOARD, address="198.51.100.23")
    made = factories.schedule(actor=actor, address=actor.address)
    first, second = scheduling.run_now(made, actor), scheduling.run_now(made, actor)
    assert first.outcome == ScheduleRun.Outcome.SUBMITTED and second.outcome == ScheduleRun.Outcome.REFUSED
    assert scheduling.reason_text(second) == "Its owner has as many computations waiting as one person may have."


def test_schedules_are_capped_per_address_and_in_all(settings):
    settings.SCHEDULE_MAX, settings.SCHEDULE_MAX_TOTAL = 2, 3
    one, other, third = (from_address(f"198.51.100.{n}") for n in (31, 32, 33))
    assert [schedule(one).status_code for _ in range(3)] == [200, 200, 422]
    assert schedule(other).status_code == 200, "another address has its own"
    full = schedule(third)
    assert full.status_code == 422 and "as many schedules as the dashboard keeps" in full.content.decode()
    assert Schedule.objects.count() == 3
    assert set(Schedule.objects.values_list("created_from", flat=True)) == {"198.51.100.31", "198.51.100.32"}


@pytest.mark.parametrize(
    ("when", "accepted"),
    [
        ({"every": "1"}, True),
        ({"every": "1", "work_seconds": "2"}, False),  # heavy work: at most every 10 minutes
        ({"every": "10", "work_seconds": "2"}, True),
        ({"kind": "cron", "cron": "* * * * *", "work_seconds": "2"}, False),
        ({"kind": "cron", "cron": "0,5 3 * * *", "work_seconds": "2"}, False),  # twice a day, 5 minutes apart
        ({"kind": "cron", "cron": "*/10 * * * *", "work_seconds": "2"}, True),
    ],
)
def test_a_schedule_runs_no_more_often_than_its_work_allows(client, when, accepted):
    answer = schedule(client, **when)
    assert (answer.status_code == 200) is accepted, answer.content.decode()[:500]
    if not accepted:
        assert "may run at most once every 10 minutes" in answer.content.decode()


def test_the_limits_counters_outlive_a_full_cache(settings, django_capture_on_commit_callbacks):
    settings.SUBMISSION_RATE_LIMIT = "2/h"
    client = from_address("198.51.100.40")
    with django_capture_on_commit_callbacks():
        assert [client.post(reverse("computations"), ADD, **HTMX).status_code for _ in range(2)] == [200, 200]
        cache.clear()  # as an eviction of everything would
        assert client.post(reverse("computations"), ADD, **HTMX).status_code == 429
    assert list(redis_clients.durable().scan_iter("dashboard:limit:submissions:address:198.51.100.40:*"))
    settings.LOGIN_RATE_LIMIT = "2/h"
    guess = {"username": "ann", "password": "a guess"}
    guesses = [client.post(reverse("login"), guess).status_code for _ in range(2)]
    cache.clear()
    assert guesses == [200, 200] and client.post(reverse("login"), guess).status_code == 429


def test_searches_and_deep_pages_of_the_list_are_not_kept_in_the_cache(client):
    for n in range(3):
        factories.computation(result=str(n))
    partials = "dashboard:partial:*"
    before = set(redis_clients.cache().scan_iter(f"*{partials}"))
    for query in ("?q=1", "?q=2", f"?before={Computation.objects.latest('pk').pk}"):
        assert client.get(reverse("computations") + query, **HTMX).status_code in (200, 286)
    assert set(redis_clients.cache().scan_iter(f"*{partials}")) == before
    client.get(reverse("computations"), **HTMX)
    assert len(set(redis_clients.cache().scan_iter(f"*{partials}")) - before) == 1, "the first page is kept"
