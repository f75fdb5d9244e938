"""Rows and users as the tests need them, written straight to the database (no form, no worker)."""

import importlib

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from tasks.models import Computation, Status

PASSWORD = "a long enough password"
# The migration that makes the operators' groups: a transactional test's flush empties them, and they are made again
# as it makes them.
OPERATORS = importlib.import_module("tasks.migrations.0017_operators")


def computation(status: str = Status.QUEUED, **fields: object) -> Computation:
    """An addition of 1 and 2 in `status`, unless `fields` say otherwise."""
    defaults = {"operation": "add", "inputs": {"x": "1", "y": "2"}, "status": status}
    return Computation.objects.create(**{**defaults, **fields})


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
