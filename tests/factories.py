"""Rows as the tests need them, written straight to the database (no form, no worker)."""

from tasks.models import Computation, Status


def computation(status: str = Status.QUEUED, **fields: object) -> Computation:
    """An addition of 1 and 2 in `status`, unless `fields` say otherwise."""
    defaults = {"operation": "add", "inputs": {"x": "1", "y": "2"}, "status": status}
    return Computation.objects.create(**{**defaults, **fields})
