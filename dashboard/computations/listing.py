"""The dashboard's page: the computation form, the list with its filters and search, and the bulk actions over it.

The list polls (dashboard.web.live): a poll answers 304 from the change counter without loading a row, a changed
list is rendered once per change for everyone who polls it, and the polling stops (286) once nothing is queued or
running. The list, the form and the filters are Jinja2 partials that the page shows rendered; the bulk panel is a
partial of the page's own template (index.html#bulk).
"""

import dataclasses
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_htmx.http import push_url, trigger_client_event

from dashboard.computations import activity
from dashboard.computations.forms import BulkActionForm, ComputationForm, ListFilterForm
from dashboard.computations.notifications import announce_endings, watch
from dashboard.computations.rows import list_rows, list_title, moving, row_labels, shape
from dashboard.web import access, health, live, submitting, throttling
from dashboard.web.jinja import rendered
from dashboard.web.redirects import see_other
from tasks import queues, services
from tasks.models import (
    COUNT_CAP,
    AuditEntry,
    Batch,
    Computation,
    Page,
    Status,
    StatusCounts,
    Workflow,
    merged_page,
    search_sources,
)

PAGE = "dashboard/index.html"
# Jinja2 templates, which the page shows rendered.
LIST, FORM = "dashboard/list.jinja", "dashboard/computation_form.jinja"
LIST_MOVING = "dashboard/list_moving.jinja"  # what a poll brings while the list keeps its shape
LIST_FILTERS, FILTERS_FORM = "dashboard/list_filters.jinja", "list-filters"  # the template, its form's id


def _list_params(filters: ListFilterForm) -> dict:
    """The list's filters and position as they were understood: what its address holds, unknown ones left out."""
    if not filters.is_valid():
        return {}
    return {key: value for key, value in filters.cleaned_data.items() if value not in (None, "")}


def _list_url(filters: ListFilterForm) -> str:
    """The list's normalised address, which it polls."""
    params = _list_params(filters)
    return reverse("computations") + (f"?{urlencode(params)}" if params else "")


def _list_context(request: HttpRequest, filters: ListFilterForm) -> dict:
    visible = Computation.objects.visible_to(owner := access.owner_scope(request))
    counts = live.per_change(request, "status-counts", visible.status_counts)
    params = _list_params(filters)
    matching = {key: params[key] for key in ("status", "operation") if key in params}
    search = params.get("q", "")
    span = params.get("activity") or activity.DEFAULT_RANGE
    if filters.is_valid():
        # Unfiltered, a batch (a workflow) is one row, its first computation's (step's); filtered or searched, its
        # computations show one by one.
        rows = visible.filter(**matching) if matching or search else visible.filter(in_main_list=True)
        page = merged_page(search_sources(rows, search), before=params.get("before"), after=params.get("after"))
        if not (matching or search):
            _show_batches(page.rows)
            _show_workflows(page.rows)
    else:
        page = Page([], newer_after=None, older_before=None)
    poll_url = _list_url(filters)
    rows = list_rows(page.rows)
    paused, broker_reachable = queues.paused_labels(), health.broker_reachable()
    filter_errors = [error for errors in filters.errors.values() for error in errors]
    title = list_title(counts[Status.RUNNING])
    return {
        "poll_url": poll_url,  # what the list polls: its filters and position
        "poll_etag": live.poll_etag(request, poll_url),
        "filter_values": matching | ({"q": search} if search else {}),  # what its links keep: filters and search
        "search": search,
        "filter_errors": filter_errors,
        "page": page,
        "rows": rows,
        "labels": row_labels(),
        # What a poll may leave in place: while it holds, a poll brings only the moving rows (web/live.py).
        "shape": live.digest(
            shape(rows),
            counts.summary,
            page.newer_after,
            page.older_before,
            title,
            paused,
            broker_reachable,
            filter_errors,
        ),
        "moving_rows": moving(rows),
        "counts": counts,
        "count_cap": COUNT_CAP,
        "in_flight": counts.in_flight > 0,
        "list_title": title,
        "broker_reachable": broker_reachable,
        "paused_queues": paused,
        "may_oversee": lambda: access.may_oversee(request.user),
        "activity_panel": activity.panel(owner, span, settled=counts.in_flight == 0),
        "activity_range": span,
        "activity_span": activity.RANGES[span].span,
        "activity_ranges": [(key, each.label) for key, each in activity.RANGES.items()],
        "activity_link": None if span == activity.DEFAULT_RANGE else span,  # what the status links keep
    }


def _show_batches(rows: list[Computation]) -> None:
    """Gives each batch's row in the list its batch and progress: one query for all batches on the page."""
    batches = Batch.objects.in_bulk({row.batch_id for row in rows if row.batch_id})
    if not batches:
        return
    counts = Computation.objects.filter(batch__in=list(batches)).status_counts_by("batch")
    for row in rows:
        if row.batch_id:
            row.shown_batch = batches[row.batch_id]
            row.batch_counts = counts.get(row.batch_id, StatusCounts({}))


def _show_workflows(rows: list[Computation]) -> None:
    """Gives each workflow's row in the list its workflow and its steps' counts: one query for all on the page."""
    workflows = Workflow.objects.in_bulk({row.workflow_id for row in rows if row.workflow_id})
    if not workflows:
        return
    counts = Computation.objects.filter(workflow__in=list(workflows)).status_counts_by("workflow")
    for row in rows:
        if row.workflow_id:
            row.shown_workflow = workflows[row.workflow_id]
            row.workflow_counts = counts.get(row.workflow_id, StatusCounts({}))


def _page_context(request: HttpRequest, form: ComputationForm, filters: ListFilterForm) -> dict:
    context = _list_context(request, filters)
    return {
        "list_title": context["list_title"],
        "computation_form": rendered(FORM, {"form": form}, request),
        "list_filters": rendered(LIST_FILTERS, {"filters": filters}, request),
        "computation_list": rendered(LIST, context, request),
    }


@require_safe
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, PAGE, _page_context(request, ComputationForm(), ListFilterForm(request.GET)))


@require_safe
def new_computation(request: HttpRequest) -> HttpResponse:
    """The form for the operation picked (`?operation=`): HTMX swaps it in; without script it is a page."""
    form = ComputationForm(operation=request.GET.get("operation"))
    if live.wants_partial(request):
        return render(request, FORM, {"form": form})
    return render(request, PAGE, _page_context(request, form, ListFilterForm({})))


@require_http_methods(["GET", "HEAD", "POST"])
def computations(request: HttpRequest) -> HttpResponse:
    return create_computation(request) if request.method == "POST" else computation_list(request)


@live.polled
def computation_list(request: HttpRequest) -> HttpResponse:
    filters = ListFilterForm(request.GET)
    if live.wants_partial(request) and filters.is_valid():
        position = _list_params(filters).keys() & {"q", "before", "after"}
        response = live.partial(
            request,
            LIST,
            _list_url(filters),
            lambda: _with_flight(_list_context(request, filters)),
            keep=not position,
            moving=LIST_MOVING,
        )
        if request.htmx.trigger == FILTERS_FORM:
            # The address bar shows the view as a link to share: the dashboard, its filters and search, no blanks.
            params = {key: value for key, value in _list_params(filters).items() if key not in ("before", "after")}
            push_url(response, reverse("dashboard") + (f"?{urlencode(params)}" if params else ""))
        return announce_endings(request, response)
    status = 200 if filters.is_valid() else 400
    if live.wants_partial(request):
        return render(request, LIST, _list_context(request, filters), status=status)
    return render(request, PAGE, _page_context(request, ComputationForm(), filters), status=status)


def _with_flight(context: dict) -> tuple[dict, bool]:
    return context, context["in_flight"]


def create_computation(request: HttpRequest) -> HttpResponse:
    form = ComputationForm(request.POST)

    def accepted(computation: Computation) -> HttpResponse:
        if request.htmx:
            fresh = ComputationForm(operation=form.spec.name)
            response = render(request, FORM, {"form": fresh, "submitted": computation})
            return watch(request, trigger_client_event(response, live.CHANGED_EVENT), computation)
        messages.success(request, gettext("Computation #%(id)s is queued.") % {"id": computation.pk})
        return watch(request, see_other(reverse("dashboard")), computation)

    return submitting.submit(request, form, accepted=accepted, refused=lambda status: _form_page(request, form, status))


def _form_page(request: HttpRequest, form: ComputationForm, status: int) -> HttpResponse:
    """The form again, with its messages in place; nothing was recorded."""
    if request.htmx:
        return render(request, FORM, {"form": form}, status=status)
    return render(request, PAGE, _page_context(request, form, ListFilterForm({})), status=status)


@require_POST
def bulk_action(request: HttpRequest) -> HttpResponse:
    """Cancel or retry many: the first post shows how many it would change and asks to confirm; the second acts.
    HTMX shows both in the #bulk panel above the list; without script each is a page."""
    form = BulkActionForm(request.POST)
    if not form.is_valid():
        return _bulk_response(request, {"bulk_form": form}, status=400)
    selection = dataclasses.replace(form.selection, owner=access.owner_scope(request, acting=True))
    if not form.cleaned_data["confirm"]:
        rows = services.actionable(selection, form.action)
        count = rows.order_by()[: services.BULK_CAP + 1].count()
        context = {
            "bulk_form": form,
            "bulk_count": min(count, services.BULK_CAP),
            "bulk_capped": count > services.BULK_CAP,
        }
        return _bulk_response(request, context)
    try:
        outcome = submitting.act(request, form.action, selection=selection, actor=access.actor(request))
    except throttling.Refused as refused:
        form.add_error(None, refused.message)
        return refused.advise(_bulk_response(request, {"bulk_form": form}, status=refused.status))
    if form.action == AuditEntry.Action.CANCEL:
        message = ngettext("%(count)d computation cancelled.", "%(count)d computations cancelled.", outcome.changed)
    else:
        message = ngettext(
            "%(count)d computation queued again.", "%(count)d computations queued again.", outcome.changed
        )
    text = message % {"count": outcome.changed}
    if not request.htmx:
        messages.success(request, text)
        return see_other(reverse("dashboard") + _filter_query(form))
    return trigger_client_event(render(request, f"{PAGE}#bulk", {"bulk_done": text}), live.CHANGED_EVENT)


def _bulk_response(request: HttpRequest, context: dict, *, status: int = 200) -> HttpResponse:
    if request.htmx:
        return render(request, f"{PAGE}#bulk", context, status=status)
    filters = ListFilterForm({key: value for key, value in request.POST.items() if key in ("status", "operation")})
    return render(request, PAGE, {**_page_context(request, ComputationForm(), filters), **context}, status=status)


def _filter_query(form: ListFilterForm) -> str:
    values = {key: form.cleaned_data[key] for key in ("status", "operation") if form.cleaned_data.get(key)}
    return f"?{urlencode(values)}" if values else ""
