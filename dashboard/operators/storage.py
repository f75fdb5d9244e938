"""The Storage page, for operators (read-only ones included): what MySQL holds and for how long
(tasks.storage_figures)."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from dashboard.web.access import overseers_only
from tasks import storage_figures as stored
from tasks.models import Status


@require_safe
@overseers_only
def storage_page(request: HttpRequest) -> HttpResponse:
    figures = stored.storage()
    return render(
        request,
        "dashboard/storage.html",
        {
            "storage": figures,
            "statuses": [(status.label, status.value, figures.by_status[status]) for status in Status],
        },
    )
