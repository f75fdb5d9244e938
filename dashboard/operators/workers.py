"""The Workers page: every worker and queue, live, and the operators' controls over them.

What it shows comes from the workers' heartbeat records and the broker (tasks.presence, tasks.queues) and the
running rows: a few Redis commands and one bounded query, never a broadcast. Its ETag is a digest of what it
shows, so a poll answers 304 while nothing changes (times that move by themselves, such as an online worker's
heartbeat, are shown as "just now" and an oldest message by when it was sent, not how old it is).

The page is for operators, read-only ones included (dashboard.web.access); pause, resume, purge and the worker
controls are for operators alone, POSTs (CSRF as everywhere), each written to the audit trail (tasks.control,
services.purge). A purge is asked for twice: the first request says what it would cancel.
"""

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import get_language, gettext, ngettext
from django.views.decorators.http import require_POST, require_safe
from redis.exceptions import RedisError

from dashboard.web import access, live
from dashboard.web.notices import acted
from tasks import control, presence, queues
from tasks.models import Computation, Status
from tasks.operations import REGISTRY

PAGE = "dashboard/workers.html"
SECTION = f"{PAGE}#section"
# At most this many running computations are listed (the sum of all pools' processes, in practice).
RUNNING_SHOWN = 200
# An online worker's heartbeat within this many intervals is shown as "just now".
FRESH_HEARTBEATS = 2


@dataclass(frozen=True)
class Running:
    pk: int
    operation: str
    progress: int


def snapshot(request: HttpRequest) -> dict[str, Any]:
    """What the page shows, read once per request (the ETag and the page both use it)."""
    if hasattr(request, "workers_snapshot"):
        return request.workers_snapshot
    now = time.time()
    try:
        listed, figures, reachable = presence.listing(now), queues.figures(), True
    except RedisError:
        listed, figures, reachable = [], [], False
    running: dict[str, list[Running]] = {}
    rows = Computation.objects.filter(status=Status.RUNNING).order_by("pk")
    for pk, operation, worker, progress in rows.values_list("pk", "operation", "worker", "progress")[:RUNNING_SHOWN]:
        running.setdefault(worker, []).append(Running(pk, operation, progress))
    request.workers_snapshot = {
        "workers": [(worker, worker.state(now), running.get(worker.name, [])) for worker in listed],
        "queues": figures,
        "reachable": reachable,
        "now": now,
    }
    return request.workers_snapshot


def poll_etag(request: HttpRequest) -> str:
    data = snapshot(request)
    shown = [
        (
            worker.name,
            worker.host,
            state,
            worker.queues,
            worker.consuming,
            worker.concurrency,
            worker.busy,
            worker.processed,
            worker.started,
            worker.versions,
            _heartbeat_text(worker, state, data["now"]),
            [(r.pk, r.progress) for r in running],
        )
        for worker, state, running in data["workers"]
    ]
    # The controls are drawn for operators only: who is asking is part of what is shown.
    parts = (shown, data["queues"], data["reachable"], get_language(), access.may_operate(request.user))
    return live.digest(*parts)


def _heartbeat_text(worker: presence.Worker, state: str, now: float) -> str:
    """Says "just now" while an online worker's heartbeats come on time, so that they change nothing on the page."""
    if state != presence.State.ONLINE:
        return _exact(worker.heartbeat)
    seconds = int(now - worker.heartbeat.timestamp())
    if seconds <= FRESH_HEARTBEATS * settings.WORKER_HEARTBEAT_SECONDS:
        return gettext("just now")
    return ngettext("%(count)d second ago", "%(count)d seconds ago", seconds) % {"count": seconds}


@require_safe
@access.overseers_only
@live.polled_section(poll_etag)
def workers_page(request: HttpRequest) -> HttpResponse:
    context = _context(request)
    if live.wants_partial(request):
        return render(request, SECTION, context)
    return render(request, PAGE, context)


def _context(request: HttpRequest) -> dict[str, Any]:
    data = snapshot(request)
    now = data["now"]
    worker_rows = []
    for worker, state, running in data["workers"]:
        worker_rows.append(
            {
                "worker": worker,
                "state": state,
                "state_label": STATE_LABELS[state](),
                "running": [(item, _operation_label(item.operation)) for item in running],
                "heartbeat": _heartbeat_text(worker, state, now),
                "started": _exact(worker.started),
                # The heartbeat may be seconds older than a run that has just started.
                "busy": min(max(worker.busy, len(running)), worker.concurrency),
            }
        )
    consuming = {
        figures.name: sum(
            1
            for worker, state, _ in data["workers"]
            if state == presence.State.ONLINE and figures.name in worker.consuming
        )
        for figures in data["queues"]
    }
    queue_rows = [
        {
            "figures": figures,
            "label": queues.label(figures.name),
            "oldest": _exact(figures.oldest_sent_at) if figures.oldest_sent_at else None,
            "consumers": consuming[figures.name],
        }
        for figures in data["queues"]
    ]
    return {
        "worker_rows": worker_rows,
        "queue_rows": queue_rows,
        "reachable": data["reachable"],
        "poll_etag": poll_etag(request),
        "lost_after": settings.WORKER_LOST_AFTER_SECONDS,
    }


def _operation_label(name: str) -> str:
    spec = REGISTRY.get(name)
    return gettext(spec.label) if spec else name


def _exact(moment: datetime) -> str:
    return formats.date_format(timezone.localtime(moment), "DATETIME_FORMAT")


STATE_LABELS = {
    presence.State.ONLINE: lambda: gettext("online"),
    presence.State.LOST: lambda: gettext("lost"),
    presence.State.STOPPED: lambda: gettext("stopped"),
}


def _queue(name: str) -> str:
    if name not in queues.NAMES:
        raise Http404
    return name


def _worker(name: str) -> presence.Worker:
    try:
        worker = presence.find(name)
    except RedisError as error:
        raise Http404 from error
    if worker is None:
        raise Http404
    return worker


@require_POST
@access.operators_only
def queue_action(request: HttpRequest, name: str, action: str) -> HttpResponse:
    """Pause or resume a queue for every worker."""
    if action not in ("pause", "resume"):
        raise Http404
    return _acted(request, control.on_queue(_queue(name), action, access.actor(request)).text)


@access.operators_only
def purge_queue(request: HttpRequest, name: str) -> HttpResponse:
    """GET: what a purge would cancel, and a form to confirm it; POST: the purge."""
    queue = _queue(name)
    if request.method == "POST":
        return _acted(request, control.on_queue(queue, "purge", access.actor(request)).text)
    if request.method not in ("GET", "HEAD"):
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD, POST"})
    waiting = control.purgeable(queue)
    return render(request, "dashboard/purge.html", {"queue": queue, "label": queues.label(queue), "waiting": waiting})


@require_POST
@access.operators_only
def worker_action(request: HttpRequest, name: str, action: str) -> HttpResponse:
    """Grow or shrink a worker's pool by one process, or shut it down warm."""
    if action not in control.WORKER_ACTIONS:
        raise Http404
    worker = _worker(name)
    try:
        control.WORKER_ACTIONS[action](worker, access.actor(request))
    except control.Refused as refused:
        return _acted(request, str(refused), status=409)
    texts = {
        "grow": gettext("%(worker)s starts one more process."),
        "shrink": gettext("%(worker)s stops one process once it is idle."),
        "shutdown": gettext("%(worker)s shuts down once what it runs has ended."),
    }
    return _acted(request, texts[action] % {"worker": worker.name})


def _acted(request: HttpRequest, text: str, *, status: int = 200) -> HttpResponse:
    """After a control: HTMX gets the section again with the notice, a plain form goes back to the page."""
    return acted(
        request, text, then=reverse("workers"), status=status, template=SECTION, context=lambda: _context(request)
    )
