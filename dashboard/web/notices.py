"""The answer to an action done from a page (cancel, retry, a queue's or a worker's control): one way for all.

HTMX gets the notice in place, with the event that makes what shows the change poll at once; a plain form post
gets the notice as a message and goes on to a page (Post/Redirect/Get). A refusal is the same answer with its
status (409, 429…), shown as an error."""

from collections.abc import Callable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django_htmx.http import trigger_client_event

from dashboard.web import live
from dashboard.web.redirects import see_other

NOTICE = "dashboard/base.html#notice"


def acted(
    request: HttpRequest,
    text: str,
    *,
    then: str,
    status: int = 200,
    template: str = NOTICE,
    context: Callable[[], dict] = dict,
) -> HttpResponse:
    """`text` after an action: HTMX gets `template` (the notice alone, or a section that shows it) with `context`;
    a plain form post goes to `then`."""
    done = status < 300
    if request.htmx:
        notice = {"notice": text, "notice_level": "success" if done else "error"}
        response = render(request, template, {**context(), **notice}, status=status)
        return trigger_client_event(response, live.CHANGED_EVENT)
    (messages.success if done else messages.error)(request, text)
    return see_other(then)
