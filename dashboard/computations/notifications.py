"""Toasts: when a computation submitted from this browser ends, a small notice says so, with its result or error;
for a batch or a workflow, one notice once all of it has ended, with its counts.

The browser keeps the ids it submitted in a signed cookie (no session, no table). A poll that brings news (a 200,
never a 304) and finds one of them ended adds an `HX-Trigger: computations-ended` event to its answer; the toast
region listens for it and posts here once for the toasts, which also forgets the ids it showed. No extra polling
and no script of ours: htmx's event, and a native <dialog> for each toast, which a button closes.
"""

import re
from collections.abc import Iterable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST
from django_htmx.http import trigger_client_event

from dashboard.computations.rows import grouped
from dashboard.web.access import owner_scope
from tasks.models import IN_FLIGHT, Batch, Computation, Workflow

COOKIE = "dashboard_watching"
SALT = "dashboard.computations.notifications"
# The newest kept: a browser that submits more than this before any ends gets toasts for these.
WATCHED_MAX = 50
ENDED_EVENT = "computations-ended"
# What the cookie holds: "c<id>" for a computation, "b<id>" for a batch, "w<id>" for a workflow (one toast when all
# of it has ended).
ENTRY = re.compile(r"^[cbw][0-9]{1,19}$")
KINDS = {Computation: "c", Batch: "b", Workflow: "w"}


def watched(request: HttpRequest) -> list[str]:
    value = request.get_signed_cookie(COOKIE, default="", salt=SALT)
    return [entry for entry in value.split(",") if ENTRY.match(entry)]


def watch(request: HttpRequest, response: HttpResponse, submitted: Computation | Batch | Workflow) -> HttpResponse:
    """Remembers in the browser that it submitted this computation, batch or workflow."""
    return _keep(response, [*watched(request), f"{KINDS[type(submitted)]}{submitted.pk}"])


def announce_endings(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """Adds the event to a poll's answer when something this browser submitted has ended (a query or two, only
    for a browser that is watching some)."""
    if entries := watched(request):
        computations, batches, workflows = _split(entries)
        if (
            _ended_computations(request, computations).exists()
            or _ended_batches(request, batches).exists()
            or _ended_workflows(request, workflows).exists()
        ):
            trigger_client_event(response, ENDED_EVENT)
    return response


@require_POST
def toasts(request: HttpRequest) -> HttpResponse:
    """The toasts of what this browser submitted and has ended; they are forgotten once shown."""
    entries = watched(request)
    computations, batches, workflows = _split(entries)
    ended = list(_ended_computations(request, computations).order_by("pk")) if computations else []
    ended_batches = list(_ended_batches(request, batches).order_by("pk")) if batches else []
    ended_workflows = list(_ended_workflows(request, workflows).order_by("pk")) if workflows else []
    for computation in ended:
        computation.shown_result = grouped(computation.result)
    for batch in ended_batches:
        batch.counts = batch.computations.status_counts()
    for workflow in ended_workflows:
        workflow.counts = workflow.steps.status_counts()
    context = {"ended": ended, "ended_batches": ended_batches, "ended_workflows": ended_workflows}
    response = render(request, "dashboard/toasts.html", context)
    shown = {f"{KINDS[type(each)]}{each.pk}" for each in (*ended, *ended_batches, *ended_workflows)}
    return _keep(response, [entry for entry in entries if entry not in shown])


def _split(entries: list[str]) -> tuple[list[int], list[int], list[int]]:
    """The ids of the computations, batches and workflows watched."""
    return tuple([int(entry[1:]) for entry in entries if entry[0] == kind] for kind in "cbw")


def _ended_computations(request: HttpRequest, ids: Iterable[int]):
    return Computation.objects.visible_to(owner_scope(request)).filter(pk__in=list(ids)).exclude(status__in=IN_FLIGHT)


def _ended_batches(request: HttpRequest, ids: Iterable[int]):
    """Batches none of whose computations is queued or running any more."""
    batches = Batch.objects.visible_to(owner_scope(request)).filter(pk__in=list(ids))
    return batches.exclude(computations__status__in=IN_FLIGHT)


def _ended_workflows(request: HttpRequest, ids: Iterable[int]):
    """Workflows that ended: none of their steps waiting, queued or running (WorkflowQuerySet.end marked them)."""
    return Workflow.objects.visible_to(owner_scope(request)).filter(pk__in=list(ids), ended_at__isnull=False)


def _keep(response: HttpResponse, entries: list[str]) -> HttpResponse:
    entries = entries[-WATCHED_MAX:]
    if entries:
        response.set_signed_cookie(
            COOKIE,
            ",".join(entries),
            salt=SALT,
            max_age=86_400,
            httponly=True,
            samesite="Lax",
            secure=settings.SESSION_COOKIE_SECURE,
        )
    else:
        response.delete_cookie(COOKIE, samesite="Lax")
    return response
