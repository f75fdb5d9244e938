"""Finding a computation by what a person remembers of it: its number, its Celery task id, its operation, or an
exact value of one of its inputs or of its result.

Each kind of match is one query that an index answers newest first (the primary key, the task id's unique index,
the operation's index, the input values' table below, the result's generated column), and a page of the search is
the newest rows of their union (`merged_page`). No LIKE, no OR across columns: a search costs the same at 10,000 and
at 1,000,000 rows (`make bench` measures it).
"""

import re
import uuid
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

from django.db import models
from django.utils.translation import gettext

from ..operations import REGISTRY, decimal_text
from .computation import VALUE_LENGTH, Computation

# What people paste of a number as pages show it: its digit grouping (commas, spaces, thin spaces).
_GROUPING = re.compile(r"[,\s\u00a0\u202f_']")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)")


class InputValue(models.Model):
    """One input of a computation, as `search_value` writes it, for the search to find by: inputs are a JSON object
    whose names vary by operation, which no index both MySQL and MariaDB have can reach into. Written with the
    computation (its inputs never change), deleted with it."""

    pk = models.CompositePrimaryKey("value", "computation")
    value = models.CharField(max_length=VALUE_LENGTH)
    computation = models.ForeignKey(Computation, on_delete=models.CASCADE, related_name="+")

    def __str__(self) -> str:
        return f"#{self.computation_id}: {self.value}"

    @classmethod
    def of(cls, computations: Iterable[tuple[int, dict]]) -> list["InputValue"]:
        """The rows for (pk, inputs) pairs, one per distinct value of each."""
        return [
            cls(computation_id=pk, value=value)
            for pk, inputs in computations
            for value in {search_value(str(one)) for each in inputs.values() for one in _each(each) if one is not None}
        ]


def _each(value: object) -> list:
    """An input's values: one, or a fan-in's several."""
    return value if isinstance(value, list) else [value]


def search_value(text: str) -> str:
    """A value as the search compares it: a number in its plain form (1,000.50 reads 1000.5), any other text as it
    is. Results are already written so (operations.decimal_text); inputs are made so when they are recorded."""
    text = text.strip()
    plain = _GROUPING.sub("", text)
    if _NUMBER.fullmatch(plain):
        try:
            return decimal_text(Decimal(plain))[:VALUE_LENGTH]
        except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
            pass
    return text[:VALUE_LENGTH]


def search_sources(rows: models.QuerySet, text: str) -> list[models.QuerySet]:
    """The queries whose union is what `text` finds among `rows` (already filtered and scoped)."""
    text = text.strip()
    if not text:
        return [rows]
    try:
        return [rows.filter(task_id=uuid.UUID(text))]
    except ValueError:
        pass
    sources = []
    if (number := text.removeprefix("#")).isdigit() and len(number) < 19:
        sources.append(rows.filter(pk=int(number)))
    if text.startswith("#"):
        return sources
    if names := operations_named(text):
        sources.append(rows.filter(operation__in=names))
    value = search_value(text)
    sources.append(rows.filter(pk__in=InputValue.objects.filter(value=value).values("computation_id")))
    sources.append(rows.filter(result_key=value))
    return sources


def operations_named(text: str) -> list[str]:
    """The operations whose name or label, in English or the reader's language, begins with `text` (two letters at
    least): "fact" finds factorize, "除" finds divide in Chinese."""
    wanted = text.casefold()
    if len(wanted) < 2:
        return []
    return [
        name
        for name, operation in REGISTRY.items()
        if any(each.casefold().startswith(wanted) for each in (name, operation.label, gettext(operation.label)))
    ]
