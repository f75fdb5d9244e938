"""Toasts: when a computation submitted from this browser ends, a small notice says so, with its result or error.

The browser keeps the ids it submitted in a signed cookie (no session, no table). A poll that brings news (a 200,
never a 304) and finds one of them ended adds an `HX-Trigger: computations-ended` event to its answer; the toast
region listens for it and posts here once for the toasts, which also forgets the ids it showed. No extra polling
and no script of ours: htmx's event, and a native <dialog> for each toast, which a button closes.
"""

from collections.abc import Iterable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST
from django_htmx.http import trigger_client_event

from tasks.models import IN_FLIGHT, Computation

from .access import owner_scope

COOKIE = "dashboard_watching"
SALT = "dashboard.notifications"
# The newest ids kept: a browser that submits more than this before any ends gets toasts for these.
WATCHED_MAX = 50
ENDED_EVENT = "computations-ended"


def watched(request: HttpRequest) -> list[int]:
    value = request.get_signed_cookie(COOKIE, default="", salt=SALT)
    return [int(part) for part in value.split(",") if part.isdigit()]


def watch(request: HttpRequest, response: HttpResponse, pk: int) -> HttpResponse:
    """Remembers in the browser that it submitted `pk`."""
    return _keep(response, [*watched(request), pk])


def announce_endings(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """Adds the event to a poll's answer when one of this browser's computations has ended (one query, only for
    a browser that is watching some)."""
    if (ids := watched(request)) and _ended(request, ids).exists():
        trigger_client_event(response, ENDED_EVENT)
    return response


@require_POST
def toasts(request: HttpRequest) -> HttpResponse:
    """The toasts of this browser's computations that have ended; they are forgotten once shown."""
    ids = watched(request)
    ended = list(_ended(request, ids).order_by("pk")) if ids else []
    response = render(request, "dashboard/toasts.html", {"ended": ended})
    shown = {computation.pk for computation in ended}
    return _keep(response, [pk for pk in ids if pk not in shown])


def _ended(request: HttpRequest, ids: Iterable[int]):
    return Computation.objects.visible_to(owner_scope(request)).filter(pk__in=list(ids)).exclude(status__in=IN_FLIGHT)


def _keep(response: HttpResponse, ids: list[int]) -> HttpResponse:
    ids = ids[-WATCHED_MAX:]
    if ids:
        response.set_signed_cookie(
            COOKIE, ",".join(map(str, ids)), salt=SALT, max_age=86_400, httponly=True, samesite="Lax",
            secure=settings.SESSION_COOKIE_SECURE,
        )  # fmt: skip
    else:
        response.delete_cookie(COOKIE, samesite="Lax")
    return response
