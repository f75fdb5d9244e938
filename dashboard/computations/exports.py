"""Streaming exports of the list, CSV or JSON, with the list's filters plus a batch and a date range.

The rows are read in keyset chunks (`id > last`, a few thousand at a time) and written as they come, so memory
stays flat however many rows are exported. A CSV cell that a spreadsheet would run as a formula is neutralised.
"""

import csv
import json
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.http import require_safe

from dashboard.computations.forms import ExportFilterForm
from dashboard.web.access import owner_scope

CHUNK = 2000
COLUMNS = [
    "id",
    "operation",
    "inputs",
    "work_seconds",
    "status",
    "result",
    "error",
    "attempts",
    "worker",
    "batch_id",
    "created_at",
    "started_at",
    "finished_at",
]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@require_safe
def export_csv(request: HttpRequest) -> HttpResponse:
    filters = ExportFilterForm(request.GET)
    if not filters.is_valid():
        return _refused(filters)
    writer = csv.writer(_Echo())
    lines = (writer.writerow([_cell(value) for value in row]) for row in _rows(filters, owner_scope(request)))
    header = writer.writerow(COLUMNS)
    return _attachment(StreamingHttpResponse(_prepend(header, lines), content_type="text/csv; charset=utf-8"), "csv")


@require_safe
def export_json(request: HttpRequest) -> HttpResponse:
    filters = ExportFilterForm(request.GET)
    if not filters.is_valid():
        return _refused(filters)
    response = StreamingHttpResponse(_json_array(_rows(filters, owner_scope(request))), content_type="application/json")
    return _attachment(response, "json")


def _refused(filters: ExportFilterForm) -> HttpResponse:
    """400 with what is wrong, as plain text: a line per error, not HTML-escaped (it is not HTML)."""
    lines = (
        message if field == NON_FIELD_ERRORS else f"{field}: {message}"
        for field, errors in filters.errors.items()
        for message in errors
    )
    return HttpResponseBadRequest("\n".join(lines) + "\n", content_type="text/plain; charset=utf-8")


def _rows(filters: ExportFilterForm, owner: AbstractBaseUser | None) -> Iterator[tuple]:
    """Every matching row the requester may see, oldest first, in chunks: each chunk a query that starts after
    the last id seen."""
    rows = filters.queryset().visible_to(owner).order_by("pk").values_list(*COLUMNS)
    last = 0
    while chunk := list(rows.filter(pk__gt=last)[:CHUNK]):
        yield from chunk
        last = chunk[-1][0]


def _json_array(rows: Iterator[tuple]) -> Iterator[str]:
    yield "["
    separator = ""
    for row in rows:
        yield separator + json.dumps(dict(zip(COLUMNS, row, strict=True)), cls=DjangoJSONEncoder)
        separator = ",\n"
    yield "]\n"


def _cell(value: object) -> object:
    """A value for a CSV cell; text that a spreadsheet would take for a formula gets a leading apostrophe
    (a negative number stays a number)."""
    if isinstance(value, dict):
        value = json.dumps(value)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _is_number(value):
        return "'" + value
    return value


def _is_number(text: str) -> bool:
    try:
        number = Decimal(text)
    except InvalidOperation:
        return False
    return number.is_finite() and text.strip() == text


def _prepend(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


def _attachment(response: StreamingHttpResponse, extension: str) -> StreamingHttpResponse:
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="computations-{stamp}.{extension}"'
    return response


class _Echo:
    """A file-like object for csv.writer that hands back each line instead of storing it."""

    def write(self, value: str) -> str:
        return value
