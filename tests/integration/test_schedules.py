"""Firing schedules: each due time once (however many fire at once), through the same submit() as a person's
computation, a missed run once or skipped as the schedule says, and pause, resume, run now and delete audited."""

import datetime
import threading

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from tasks import scheduling
from tasks.models import AuditEntry, Computation, Schedule, ScheduleRun, Status
from tests import factories
from tests.factories import ACTOR

pytestmark = pytest.mark.django_db

MINUTE = datetime.timedelta(minutes=1)


def due_now(schedule: Schedule, ago: datetime.timedelta = datetime.timedelta(seconds=1)) -> datetime.datetime:
    due = timezone.now() - ago
    Schedule.objects.filter(pk=schedule.pk).update(next_run_at=due)
    return due


def test_a_due_schedule_submits_its_computation_once_and_is_due_again_on_its_grid():
    owner = factories.person("ann")
    schedule = factories.schedule(owner=owner)
    assert schedule.next_run_at > timezone.now()
    due = due_now(schedule)

    assert scheduling.fire_due() == 1
    assert scheduling.fire_due() == 0, "fired once"

    run = ScheduleRun.objects.get()
    assert (run.schedule_id, run.due_at, run.outcome, run.manual) == (schedule.pk, due, "submitted", False)
    computation = Computation.objects.get(pk=run.computation_id)
    assert (computation.operation, computation.inputs, computation.owner) == ("add", {"x": "2", "y": "3"}, owner)
    assert computation.status == Status.QUEUED and computation.enqueued_at is not None
    schedule.refresh_from_db()
    assert schedule.next_run_at > timezone.now()
    assert (schedule.next_run_at - schedule.created_at.replace(second=0, microsecond=0)) % (5 * MINUTE) == (
        datetime.timedelta(0)
    )


@pytest.mark.django_db(transaction=True)
def test_two_firings_at_once_fire_each_due_time_once():
    made = [factories.schedule() for _ in range(20)]
    for schedule in made:
        due_now(schedule)
    barrier = threading.Barrier(2)
    fired: list[int] = []

    def fire() -> None:
        barrier.wait()
        try:
            fired.append(scheduling.fire_due())
        finally:
            connection.close()

    threads = [threading.Thread(target=fire) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(fired) == 20
    assert ScheduleRun.objects.count() == 20 == Computation.objects.count()
    assert sorted(ScheduleRun.objects.values_list("schedule_id", flat=True)) == sorted(s.pk for s in made)


def test_a_missed_run_runs_once_on_recovery_or_is_skipped():
    catching_up, skipping = factories.schedule(), factories.schedule(catch_up=False)
    hours_ago = datetime.timedelta(hours=3)  # 36 periods of 5 minutes missed
    due_now(catching_up, hours_ago)
    due_now(skipping, hours_ago)

    assert scheduling.fire_due() == 2
    assert scheduling.fire_due() == 0

    caught = ScheduleRun.objects.get(schedule=catching_up)
    assert caught.outcome == "submitted" and caught.computation_id and caught.late > datetime.timedelta(hours=2)
    skipped = ScheduleRun.objects.get(schedule=skipping)
    assert (skipped.outcome, skipped.computation_id) == ("skipped", None)
    assert Computation.objects.count() == 1
    for schedule in (catching_up, skipping):
        schedule.refresh_from_db()
        assert timezone.now() < schedule.next_run_at <= timezone.now() + 5 * MINUTE


def test_a_run_the_queue_has_no_room_for_is_recorded_as_refused(settings):
    settings.COMPUTATION_MAX_QUEUED = 1
    waiting = factories.computation(Status.QUEUED)
    schedule = factories.schedule()
    due_now(schedule)
    assert scheduling.fire_due() == 1
    run = ScheduleRun.objects.get()
    assert (run.outcome, run.reason, run.computation_id) == ("refused", "The queue is full.", None)
    assert list(Computation.objects.values_list("pk", flat=True)) == [waiting.pk]


def test_once_runs_once_and_is_done():
    schedule = factories.schedule(Schedule.Kind.ONCE, run_at=timezone.now() + MINUTE)
    assert scheduling.fire_due() == 0, "not yet"
    assert scheduling.fire_due(timezone.now() + 2 * MINUTE) == 1
    schedule.refresh_from_db()
    assert (schedule.next_run_at, schedule.state) == (None, "done")
    assert scheduling.fire_due(timezone.now() + 10 * MINUTE) == 0


def test_pause_resume_run_now_and_delete_are_audited():
    schedule = factories.schedule()
    due_now(schedule, datetime.timedelta(hours=1))
    assert scheduling.pause(schedule, ACTOR) and not scheduling.pause(schedule, ACTOR)
    assert scheduling.fire_due() == 0, "paused"
    assert scheduling.resume(schedule, ACTOR)
    schedule.refresh_from_db()
    assert schedule.next_run_at > timezone.now(), "what fell due while paused does not run"
    run = scheduling.run_now(schedule, ACTOR)
    assert run.manual and run.outcome == "submitted"
    schedule.refresh_from_db()
    assert schedule.next_run_at > timezone.now(), "the due times stay as they were"
    computation, pk = run.computation_id, schedule.pk
    scheduling.delete(schedule, ACTOR)
    assert not Schedule.objects.exists() and not ScheduleRun.objects.exists()
    assert Computation.objects.filter(pk=computation).exists(), "its computations stay"
    actions = list(AuditEntry.objects.order_by("pk").values_list("action", "selection", "address"))
    assert [action for action, _, _ in actions] == [
        "create-schedule",
        "pause-schedule",
        "resume-schedule",
        "run-schedule",
        "delete-schedule",
    ]
    assert all(selection == {"schedule": pk, "name": "sums"} for _, selection, _ in actions)
    assert AuditEntry.objects.get(action="run-schedule").links.get().computation_id == computation


def test_the_cap_on_schedules(settings):
    settings.SCHEDULE_MAX = 2
    factories.schedule(), factories.schedule()
    with pytest.raises(scheduling.TooManySchedules):
        factories.schedule()
    assert Schedule.objects.count() == 2


FORM = {
    "name": "nightly sums",
    "operation": "add",
    "x": "2",
    "y": "3",
    "work_seconds": "0",
    "kind": "cron",
    "cron": "0 2 * * *",
    "every": "",
    "unit": "minutes",
    "run_at": "",
    "catch_up": "on",
}


def test_the_page_creates_a_schedule_and_shows_its_runs_linked_to_their_computations(client):
    created = client.post(reverse("schedules"), FORM)
    assert created.status_code == 303
    schedule = Schedule.objects.get()
    assert created["Location"] == schedule.get_absolute_url()
    assert (schedule.kind, schedule.cron, schedule.catch_up) == ("cron", "0 2 * * *", True)
    assert schedule.inputs == {"x": "2", "y": "3"}
    listing = client.get(reverse("schedules")).text
    assert "nightly sums" in listing and "cron 0 2 * * * (UTC)" in listing

    ran = client.post(reverse("schedule-action", args=[schedule.pk, "run"]))
    assert ran.status_code == 303
    run = ScheduleRun.objects.get()
    page = client.get(schedule.get_absolute_url()).text
    assert f'<a href="/computations/{run.computation_id}/">#{run.computation_id}</a>' in page
    Computation.objects.filter(pk=run.computation_id).delete()  # as retention would
    assert f"#{run.computation_id} (pruned)" in client.get(schedule.get_absolute_url()).text

    assert client.post(reverse("schedule-action", args=[schedule.pk, "pause"])).status_code == 303
    assert Schedule.objects.get().paused
    assert client.get(reverse("schedule-action", args=[schedule.pk, "resume"])).status_code == 405, "no GET acts"
    assert client.post(reverse("schedule-action", args=[schedule.pk, "explode"])).status_code == 404
    assert client.post(reverse("schedule-action", args=[schedule.pk, "delete"])).status_code == 303
    assert not Schedule.objects.exists()


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"cron": "61 * * * *"}, "cron", "Not a cron expression"),
        ({"cron": "* * *"}, "cron", "five fields"),
        ({"kind": "once", "run_at": "2001-01-01T09:00"}, "run_at", "This time has passed."),
        ({"kind": "once"}, "run_at", "Give the time to run it at."),
        ({"kind": "every", "every": "0"}, "every", "greater than or equal to 1"),
        ({"kind": "every"}, "every", "Give how often to run it."),
        ({"name": ""}, "name", "This field is required."),
        ({"x": "nope"}, "x", "Enter a number."),
        ({"kind": "hourly"}, "kind", "Select a valid choice."),
    ],
)
def test_an_invalid_schedule_gets_422_with_the_message_in_place_and_writes_nothing(client, changes, field, message):
    answer = client.post(reverse("schedules"), {**FORM, **changes}, HTTP_HX_REQUEST="true")
    assert answer.status_code == 422
    assert message in answer.text and f'id="id_{field}"' in answer.text
    assert not Schedule.objects.exists() and not AuditEntry.objects.exists()


def test_the_api_lists_creates_and_acts_on_schedules(client):
    answer = client.post(reverse("api-schedules"), {**FORM, "kind": "every", "every": "2", "unit": "hours"})
    assert answer.status_code == 201
    body = answer.json()
    assert (body["kind"], body["every"], body["unit"], body["state"]) == ("every", 2, "hours", "active")
    assert body["description"] == "every 2 hours" and body["next_run_at"]
    assert body["cron"] is None and body["run_at"] is None, "only the fields of its kind are kept"
    refused = client.post(reverse("api-schedules"), {**FORM, "cron": "nope"})
    assert refused.status_code == 422 and "cron" in refused.json()["errors"]
    assert [each["id"] for each in client.get(reverse("api-schedules")).json()["schedules"]] == [body["id"]]
    ran = client.post(reverse("api-schedule-action", args=[body["id"], "run"])).json()
    assert ran["run"]["outcome"] == "submitted" and ran["run"]["computation"]
    detail = client.get(reverse("api-schedule", args=[body["id"]])).json()
    assert [run["computation"] for run in detail["runs"]] == [ran["run"]["computation"]]
    paused = client.post(reverse("api-schedule-action", args=[body["id"], "pause"])).json()
    assert (paused["paused"], paused["changed"]) == (True, True)
    assert AuditEntry.objects.filter(source="api").count() == 3
    assert client.post(reverse("api-schedule-action", args=[body["id"], "delete"])).json() == {"deleted": body["id"]}
    assert client.get(reverse("api-schedule", args=[body["id"]])).status_code == 404


@pytest.mark.usefixtures("accounts_on")
def test_with_accounts_on_a_person_sees_and_steers_only_their_own_schedules(people):
    ann, bob = factories.signed_in(people["ann"]), factories.signed_in(people["bob"])
    assert ann.post(reverse("schedules"), FORM).status_code == 303
    schedule = Schedule.objects.get()
    assert schedule.owner.username == "ann"
    assert "nightly sums" not in bob.get(reverse("schedules")).text
    assert bob.get(schedule.get_absolute_url()).status_code == 404
    assert bob.post(reverse("schedule-action", args=[schedule.pk, "delete"])).status_code == 404
    assert bob.get(reverse("api-schedule", args=[schedule.pk])).status_code == 404
    assert Schedule.objects.exists()
    run = scheduling.run_now(schedule, ACTOR)
    assert Computation.objects.get(pk=run.computation_id).owner.username == "ann", "runs are the owner's"


def test_the_admin_creates_pauses_runs_and_deletes_schedules_through_the_same_service(admin_client):
    form = {
        "name": "hourly",
        "operation": "multiply",
        "inputs": '{"x": "4", "y": "5"}',
        "work_seconds": "0",
        "kind": "every",
        "every": "1",
        "unit": "hours",
        "run_at": "",
        "cron": "",
        "catch_up": "on",
    }
    refused = admin_client.post("/admin/tasks/schedule/add/", {**form, "inputs": '{"x": "4"}'})
    assert refused.status_code == 200 and "Give each input as text: x, y." in refused.text
    refused = admin_client.post("/admin/tasks/schedule/add/", {**form, "kind": "cron", "cron": "99 * * * *"})
    assert refused.status_code == 200 and "Not a cron expression" in refused.text
    assert not Schedule.objects.exists()

    assert admin_client.post("/admin/tasks/schedule/add/", form).status_code == 302
    schedule = Schedule.objects.get()
    assert (schedule.operation, schedule.inputs, schedule.period) == ("multiply", {"x": "4", "y": "5"}, 60 * MINUTE)
    assert schedule.next_run_at > timezone.now()
    changelist = "/admin/tasks/schedule/"
    admin_client.post(changelist, {"action": "pause", "_selected_action": [schedule.pk]})
    assert Schedule.objects.get().paused
    admin_client.post(changelist, {"action": "run_now", "_selected_action": [schedule.pk]})
    assert ScheduleRun.objects.get().computation.operation == "multiply"
    page = admin_client.get(f"/admin/tasks/schedule/{schedule.pk}/change/")
    assert page.status_code == 200 and "submitted" in page.text.lower()
    admin_client.post(f"/admin/tasks/schedule/{schedule.pk}/delete/", {"post": "yes"})
    assert not Schedule.objects.exists()
    assert list(AuditEntry.objects.filter(source="admin").order_by("pk").values_list("action", flat=True)) == [
        "create-schedule",
        "pause-schedule",
        "run-schedule",
        "delete-schedule",
    ]
