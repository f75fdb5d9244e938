"""The dashboard's pages and their HTMX partials.

Each view parses (a form), calls a service or a query, and renders. An HTMX request gets a partial of the same
template that renders the whole page (`page.html#name`), so each piece of HTML has one source. Lists and details
that poll answer 304 from the change counter without loading a row, are rendered once per change for everyone
who polls them, and stop the polling (286) once nothing is queued or running.
"""

import contextlib
import dataclasses
import hashlib
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, HttpResponseServerError, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import get_language, gettext, ngettext
from django.views.decorators.cache import cache_control
from django.views.decorators.http import condition, require_http_methods, require_POST, require_safe
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseStopPolling, trigger_client_event
from redis.exceptions import RedisError

from tasks import changes, services
from tasks.models import COUNT_CAP, AuditEntry, Batch, Computation, Page, Status

from . import activity, health, theme, throttling
from .access import owner_of_new, owner_scope
from .forms import BulkActionForm, ComputationForm, ListFilterForm
from .middleware import outage_notice
from .notifications import announce_endings, watch

PAGE = "dashboard/index.html"
DETAIL = "dashboard/detail.html"
CHANGED_EVENT = "computations-changed"
# A rendered partial outlives its version only briefly: a new version is a new key.
PARTIAL_CACHE_SECONDS = 120


def version_etag(request: HttpRequest, *args: Any, **kwargs: Any) -> str | None:
    """The ETag of this request: worked out once, and the view keys its rendered partial by it."""
    if not hasattr(request, "live_etag"):
        request.live_etag = poll_etag(request, request.get_full_path(), htmx=bool(request.htmx))
    return request.live_etag


def poll_etag(request: HttpRequest, path: str, *, htmx: bool = True) -> str | None:
    """The ETag that a request for `path` from this browser gets now: the change counter, plus everything else the
    HTML depends on (the address, partial or page, language, whether the broker answers, who asks). A page gives
    its polled partial the one its first poll will get, so that poll too can answer 304."""
    version = changes.current_version()
    if version is None:
        return None
    # Who asks, as their session (read from its cookie: a 304 touches no table): it decides whose rows show, and
    # a whole page carries their name and the colour scheme they chose.
    who = f"{request.COOKIES.get(settings.SESSION_COOKIE_NAME, '')}|{theme.chosen(request)}"
    varies = f"{path}|{htmx}|{get_language()}|{health.broker_reachable()}|{who}"
    return f"{version}-{hashlib.blake2b(varies.encode(), digest_size=8).hexdigest()}"


def live(view):
    """For a view that polls: ETag from the change counter, revalidated on every poll, one cache entry each for
    the page and its partial."""
    return vary_on_headers("HX-Request")(cache_control(no_cache=True)(condition(etag_func=version_etag)(view)))


def _wants_partial(request: HttpRequest) -> bool:
    # A history restore after "back" must get the whole page, even though htmx asks for it.
    return bool(request.htmx) and not request.htmx.history_restore_request


def _live_partial(request: HttpRequest, template: str, build: Callable[[], tuple[dict, bool]]) -> HttpResponse:
    """A polled partial, 286 once nothing it shows is in flight. It is rendered once per change for everyone who
    polls it with the same scope: the HTML is kept in the cache under its ETag (it holds no CSRF token)."""
    key = f"dashboard:partial:{etag}" if (etag := version_etag(request)) else None
    cached = _cached(key)
    if cached is None:
        context, in_flight = build()
        cached = (render_to_string(template, context, request), in_flight)
        if key:
            with contextlib.suppress(RedisError):
                cache.set(key, cached, timeout=PARTIAL_CACHE_SECONDS)
    content, in_flight = cached
    return HttpResponse(content) if in_flight else HttpResponseStopPolling(content)


def _cached(key: str | None) -> tuple[str, bool] | None:
    if key is None:
        return None
    try:
        return cache.get(key)
    except RedisError:
        return None


def _list_context(request: HttpRequest, filters: ListFilterForm) -> dict:
    visible = Computation.objects.visible_to(owner := owner_scope(request))
    counts = visible.count_by_status()
    if filters.is_valid():
        params = {key: value for key, value in filters.cleaned_data.items() if value not in (None, "")}
        matching = {key: params[key] for key in ("status", "operation") if key in params}
        # Unfiltered, a batch is one row (its first computation's); filtered, its computations show one by one.
        rows = visible.filter(**matching) if matching else visible.filter(in_main_list=True)
        page = rows.page(before=params.get("before"), after=params.get("after"))
        if not matching:
            _show_batches(page.rows)
    else:
        params, matching, page = {}, {}, Page([], newer_after=None, older_before=None)
    poll_url = reverse("computations") + (f"?{urlencode(params)}" if params else "")
    return {
        "filters": filters,
        "poll_url": poll_url,  # what the list polls: its filters and position
        "poll_etag": poll_etag(request, poll_url),
        "filter_values": matching,  # what its links keep: the filters only
        "page": page,
        "summary": [(status.value, status.label, counts[status]) for status in Status],
        "count_cap": COUNT_CAP,
        "in_flight": counts[Status.QUEUED] + counts[Status.RUNNING] > 0,
        "running": counts[Status.RUNNING],
        "broker_reachable": health.broker_reachable(),
        "activity": activity.activity(owner),
    }


def _show_batches(rows: list[Computation]) -> None:
    """Gives each batch's row in the list its batch and progress: one query for all batches on the page."""
    batches = Batch.objects.in_bulk({row.batch_id for row in rows if row.batch_id})
    if not batches:
        return
    counts: dict[int, dict[str, int]] = {pk: dict.fromkeys(Status.values, 0) for pk in batches}
    grouped = Computation.objects.filter(batch__in=list(batches)).order_by().values_list("batch", "status")
    for batch_id, status, count in grouped.annotate(n=Count("pk")):
        counts[batch_id][status] = count
    for row in rows:
        if row.batch_id:
            row.shown_batch = batches[row.batch_id]
            row.batch_counts = counts[row.batch_id]
            row.batch_done = sum(
                counts[row.batch_id][status] for status in (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)
            )


def _page_context(request: HttpRequest, form: ComputationForm, filters: ListFilterForm) -> dict:
    return {"form": form, **_list_context(request, filters)}


@require_safe
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, PAGE, _page_context(request, ComputationForm(), ListFilterForm(request.GET)))


@require_safe
def new_computation(request: HttpRequest) -> HttpResponse:
    """The form for the operation picked (`?operation=`): HTMX swaps it in; without script it is a page."""
    form = ComputationForm(operation=request.GET.get("operation"))
    if _wants_partial(request):
        return render(request, f"{PAGE}#form", {"form": form})
    return render(request, PAGE, _page_context(request, form, ListFilterForm({})))


@require_http_methods(["GET", "HEAD", "POST"])
def computations(request: HttpRequest) -> HttpResponse:
    return create_computation(request) if request.method == "POST" else computation_list(request)


@live
def computation_list(request: HttpRequest) -> HttpResponse:
    filters = ListFilterForm(request.GET)
    if _wants_partial(request) and filters.is_valid():
        response = _live_partial(request, f"{PAGE}#list", lambda: _with_flight(_list_context(request, filters)))
        return announce_endings(request, response)
    status = 200 if filters.is_valid() else 400
    if _wants_partial(request):
        return render(request, f"{PAGE}#list", _list_context(request, filters), status=status)
    return render(request, PAGE, _page_context(request, ComputationForm(), filters), status=status)


def _with_flight(context: dict) -> tuple[dict, bool]:
    return context, context["in_flight"]


def create_computation(request: HttpRequest) -> HttpResponse:
    form = ComputationForm(request.POST)
    if wait := throttling.submission_wait(request):
        return _form_refused(request, form, throttling.too_many_submissions(wait), status=429, retry_after=wait)
    if not form.is_valid():
        return _form_refused(request, form, status=422)
    try:
        computation = services.submit(
            operation=form.spec,
            inputs=form.inputs,
            work_seconds=form.work,
            idempotency_key=form.cleaned_data["idempotency_key"],
            owner=owner_of_new(request),
        )
    except services.QueueFull:
        message = gettext("The queue is full: nothing was submitted. Try again in a minute.")
        return _form_refused(request, form, message, status=503, retry_after=60)
    if request.htmx:
        fresh = ComputationForm(operation=form.spec.name)
        response = render(request, f"{PAGE}#form", {"form": fresh, "submitted": computation})
        return watch(request, trigger_client_event(response, CHANGED_EVENT), computation)
    messages.success(request, gettext("Computation #%(id)s is queued.") % {"id": computation.pk})
    return watch(request, _see_other(reverse("dashboard")), computation)


def _form_refused(
    request: HttpRequest, form: ComputationForm, message: str = "", *, status: int, retry_after: int | None = None
) -> HttpResponse:
    """The form again, with its messages in place (and `message` above the fields); nothing was recorded."""
    if message:
        form.add_error(None, message)
    if request.htmx:
        response = render(request, f"{PAGE}#form", {"form": form}, status=status)
    else:
        response = render(request, PAGE, _page_context(request, form, ListFilterForm({})), status=status)
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response


@require_safe
@live
def computation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    if _wants_partial(request):
        response = _live_partial(request, f"{DETAIL}#detail", lambda: _detail_context(request, pk))
        return announce_endings(request, response)
    return render(request, DETAIL, _detail_context(request, pk)[0])


def _detail_context(request: HttpRequest, pk: int) -> tuple[dict, bool]:
    computation = get_object_or_404(Computation.objects.visible_to(owner_scope(request)), pk=pk)
    history = computation.audit_entries.select_related("user")[:20]
    poll_url = reverse("computation-detail", args=[pk])
    context = {"computation": computation, "history": history, "poll_url": poll_url}
    return {**context, "poll_etag": poll_etag(request, poll_url)}, computation.is_in_flight


def actor(request: HttpRequest, source: str = AuditEntry.Source.DASHBOARD) -> services.Actor:
    """Who acts, for the audit trail: the address is the client's, as HAProxy forwarded it."""
    return services.Actor(source=source, address=request.META.get("REMOTE_ADDR"), user=request.user)


@require_POST
def cancel_computation(request: HttpRequest, pk: int) -> HttpResponse:
    if services.cancel(selection=_one(request, pk), actor=actor(request)).changed:
        return _acted(request, pk, gettext("Computation #%(id)s is cancelled."))
    return _acted(request, pk, gettext("Computation #%(id)s has already ended: nothing to cancel."), status=409)


@require_POST
def retry_computation(request: HttpRequest, pk: int) -> HttpResponse:
    if services.retry(selection=_one(request, pk), actor=actor(request)).changed:
        return _acted(request, pk, gettext("Computation #%(id)s is queued again."))
    return _acted(request, pk, gettext("Only a failed or cancelled computation can be retried (#%(id)s)."), status=409)


def _one(request: HttpRequest, pk: int) -> services.Selection:
    """The computation `pk` as a selection, or 404 when it does not exist or is not the requester's to see."""
    owner = owner_scope(request)
    get_object_or_404(Computation.objects.visible_to(owner).only("pk"), pk=pk)
    return services.Selection(ids=[pk], owner=owner)


@require_POST
def bulk_action(request: HttpRequest) -> HttpResponse:
    """Cancel or retry many: the first post shows how many it would change and asks to confirm; the second acts.
    HTMX shows both in the #bulk panel above the list; without script each is a page."""
    form = BulkActionForm(request.POST)
    if not form.is_valid():
        return _bulk_response(request, {"bulk_form": form}, status=400)
    selection = dataclasses.replace(form.selection, owner=owner_scope(request))
    if not form.cleaned_data["confirm"]:
        rows = services.actionable(selection, form.action)
        count = rows.order_by()[: services.BULK_CAP + 1].count()
        context = {
            "bulk_form": form,
            "bulk_count": min(count, services.BULK_CAP),
            "bulk_capped": count > services.BULK_CAP,
        }
        return _bulk_response(request, context)
    act = services.cancel if form.action == AuditEntry.Action.CANCEL else services.retry
    outcome = act(selection=selection, actor=actor(request))
    if form.action == AuditEntry.Action.CANCEL:
        message = ngettext("%(count)d computation cancelled.", "%(count)d computations cancelled.", outcome.changed)
    else:
        message = ngettext(
            "%(count)d computation queued again.", "%(count)d computations queued again.", outcome.changed
        )
    text = message % {"count": outcome.changed}
    if not request.htmx:
        messages.success(request, text)
        return _see_other(reverse("dashboard") + _filter_query(form))
    return trigger_client_event(render(request, f"{PAGE}#bulk", {"bulk_done": text}), CHANGED_EVENT)


def _bulk_response(request: HttpRequest, context: dict, *, status: int = 200) -> HttpResponse:
    if request.htmx:
        return render(request, f"{PAGE}#bulk", context, status=status)
    filters = ListFilterForm({key: value for key, value in request.POST.items() if key in ("status", "operation")})
    return render(request, PAGE, {**_page_context(request, ComputationForm(), filters), **context}, status=status)


def _filter_query(form: ListFilterForm) -> str:
    values = {key: form.cleaned_data[key] for key in ("status", "operation") if form.cleaned_data.get(key)}
    return f"?{urlencode(values)}" if values else ""


def _acted(request: HttpRequest, pk: int, message: str, *, status: int = 200) -> HttpResponse:
    """After cancel or retry: HTMX gets the notice and an event that refreshes what shows the computation;
    a plain form post gets the notice as a message and goes back where it came from."""
    text = message % {"id": pk}
    if request.htmx:
        context = {"notice": text, "notice_level": "success" if status == 200 else "error"}
        response = render(request, "dashboard/base.html#notice", context, status=status)
        return trigger_client_event(response, CHANGED_EVENT)
    (messages.success if status == 200 else messages.error)(request, text)
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = reverse("computation-detail", args=[pk])
    return _see_other(back)


def _see_other(url: str) -> HttpResponseRedirect:
    # 303: the browser follows a POST's redirect with a GET, and "back" does not post again.
    response = HttpResponseRedirect(url)
    response.status_code = 303
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's 500, which an HTMX request shows in the page's outage notice."""
    return outage_notice(request, HttpResponseServerError(render_to_string("500.html")))


@login_not_required
@require_safe
def healthz(request: HttpRequest) -> HttpResponse:
    """The process is up; touches nothing else, so a database outage does not take every replica out."""
    return HttpResponse("ok\n", content_type="text/plain")


@login_not_required
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    """The database, the broker and the cache answer; 503 naming what does not."""
    report = health.check_dependencies()
    ready = all(state == "ok" for state in report.values())
    return JsonResponse(report, status=200 if ready else 503)
