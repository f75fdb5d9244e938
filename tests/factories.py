"""Rows, users and signed-in clients as the tests need them, written straight to the database (no form, no worker).
One place says what a computation in each state, a batch, a schedule, a webhook and its deliveries and each kind of
user look like, so that a test names only what it is about."""

import importlib

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from tasks import scheduling, services
from tasks.models import AuditEntry, Batch, Computation, Schedule, Status, Webhook, WebhookDelivery
from tasks.operations import REGISTRY
from tasks.webhooks import signing

PASSWORD = "a long enough password"
# The migration that makes the operators' groups: a transactional test's flush empties them, and they are made again
# as it makes them.
OPERATORS = importlib.import_module("tasks.migrations.0017_operators")
# Who acts when a test does not say: someone on the dashboard, at a documentation address.
ACTOR = services.Actor(source=AuditEntry.Source.DASHBOARD, address="192.0.2.7")


def computation(status: str = Status.QUEUED, **fields: object) -> Computation:
    """An addition of 1 and 2 in `status`, with what that status implies, unless `fields` say otherwise: a running
    one has started its first attempt; an ended one has its end, and a result (1 + 2's: give `result` with other
    inputs) or an error, and had started unless it was cancelled. The times are `finished_at` (or `updated_at`, the
    heartbeat) when given, so that a row is never started after it ended; a queued row was never sent
    (`enqueued_at`), as a worker's sweep would see it."""
    at = fields.get("finished_at") or fields.get("updated_at") or timezone.now()
    started = {"attempts": 1, "started_at": at}
    implied = {
        Status.WAITING: {},
        Status.QUEUED: {},
        Status.RUNNING: started,
        Status.SUCCEEDED: {**started, "finished_at": at, "progress": 100, "result": "3"},
        Status.FAILED: {**started, "finished_at": at, "error": "boom"},
        Status.CANCELLED: {"finished_at": at},
        Status.NOT_RUN: {"finished_at": at, "error": "Not run: step 1, which it depends on, failed."},
    }[status]
    defaults = {"operation": "add", "inputs": {"x": "1", "y": "2"}, "status": status}
    return Computation.objects.create(**{**defaults, **implied, **fields})


def batch(
    status: str = Status.QUEUED,
    *,
    size: int = 2,
    fixed_inputs: dict | None = None,
    computations: bool = True,
    **fields: object,
) -> Batch:
    """Additions over x = 1 … `size` (y fixed at 2), a computation per value in `status` (as computation() makes
    one), the first standing for the batch in the main list: laid out as services.submit_batch() lays them out,
    without sending anything or writing search values. `computations=False`: the batch alone, for a test that makes
    its rows itself."""
    fixed_inputs = {"y": "2"} if fixed_inputs is None else fixed_inputs
    made = Batch.objects.create(
        **{"operation": "add", "varied": "x", "start": "1", "stop": str(size), "step": "1", "size": size, **fields},
        fixed_inputs=fixed_inputs,
    )
    if computations:
        for index, value in enumerate(range(1, size + 1)):
            computation(
                status,
                operation=made.operation,
                inputs={made.varied: str(value), **fixed_inputs},
                batch=made,
                in_main_list=index == 0,
                owner=made.owner,
                created_at=made.created_at,
            )
    return made


def schedule(
    kind: str = Schedule.Kind.EVERY,
    *,
    owner=None,
    catch_up: bool = True,
    actor: services.Actor = ACTOR,
    address: str | None = None,
    **when: object,
) -> Schedule:
    """A schedule named "sums": 2 + 3 every 5 minutes unless `when` says otherwise, made as the pages make one
    (scheduling.create: validated, audited by `actor`, with its first due time); `owner`'s, or else made from
    `address`."""
    when = {"every": 5, "unit": Schedule.Unit.MINUTES, "run_at": None, "cron": ""} | when
    add = REGISTRY["add"]
    return scheduling.create(
        name="sums",
        operation=add,
        inputs=add.parse_inputs({"x": "2", "y": "3"}),
        work_seconds=0,
        kind=kind,
        catch_up=catch_up,
        owner=owner,
        actor=actor,
        address=address,
        **when,
    )


def webhook(owner, url: str = "https://hooks.example.com/in") -> Webhook:
    """`owner`'s webhook for `url`, with a secret of its own (its URL not checked: tasks.webhooks.registering does)."""
    return Webhook.objects.create(owner=owner, url=url, secret=signing.new_secret())


def delivery(hook: Webhook, **fields: object) -> WebhookDelivery:
    """A computation.ended of computation #1 for `hook`, due now and never attempted, unless `fields` say otherwise."""
    event = WebhookDelivery.Event.COMPUTATION_ENDED
    payload = {"type": event, "timestamp": "2026-12-01T08:00:00.000000Z", "data": {"id": 1, "status": "succeeded"}}
    return WebhookDelivery.objects.create(**{"webhook": hook, "event": event, "payload": payload, **fields})


def person(name: str = "ann", **fields: object):
    """Someone with an account and no other right."""
    return get_user_model().objects.create_user(name, password=PASSWORD, **fields)


def operator(name: str = "olga", *, read_only: bool = False):
    """Staff in the group that the admin gives an operator (migration 0017 makes both groups)."""
    if Group.objects.filter(name__in=OPERATORS.GROUPS).count() < len(OPERATORS.GROUPS):
        OPERATORS.create_groups(apps, None)
    user = person(name, is_staff=True)
    user.groups.add(Group.objects.get(name="Read-only operators" if read_only else "Operators"))
    return user


def superuser(name: str = "root"):
    """The account `createsuperuser` makes: every right, in the admin too."""
    return get_user_model().objects.create_superuser(name, password=PASSWORD)


def signed_in(user, **defaults: object) -> Client:
    """A browser of its own (a test client with `defaults`, e.g. REMOTE_ADDR), signed in as `user`."""
    client = Client(**defaults)
    client.force_login(user)
    return client
