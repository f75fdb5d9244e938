"""A workflow's page: its graph drawn on the server and the same steps as a table, live while any of them is in
flight (the same 304 and 286 polling as the list); cancel and retry of the whole."""

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_POST, require_safe

from dashboard.computations.notifications import announce_endings
from dashboard.computations.rows import ComputationRow, computation_rows, grouped, inputs_text
from dashboard.web import access, live, submitting, throttling
from dashboard.web.jinja import rendered
from dashboard.web.notices import acted
from dashboard.workflows import drawing
from tasks import services
from tasks.models import AuditEntry, Computation, StatusCounts, Workflow, WorkflowEdge

PAGE = "dashboard/section_page.html"
# Jinja2 templates, which the page shows rendered: the workflow's polled section, and its steps' table.
SECTION, STEPS = "dashboard/workflow_section.jinja", "dashboard/workflow_rows.jinja"
STEPS_IN_THE_LIST = 10  # what its row in the main list shows when opened; its page shows them all


@dataclass(frozen=True)
class StepRow:
    number: int
    inputs: str  # an input that takes a result says whose: "x = result of step 1 (42)"
    waits_for: str  # the steps it waits for without taking their results, if any
    computation: ComputationRow  # its status, outcome and Cancel or Retry button, as the list shows them


@require_safe
@live.polled
def workflow_detail(request: HttpRequest, pk: int) -> HttpResponse:
    if live.wants_partial(request):
        path = reverse("workflow-detail", args=[pk])
        response = live.partial(request, SECTION, path, lambda: _workflow_context(request, pk))
        return announce_endings(request, response)
    context, _ = _workflow_context(request, pk)
    return render(request, PAGE, {"title": context["title"], "section": rendered(SECTION, context, request)})


@require_safe
def workflow_steps(request: HttpRequest, pk: int) -> HttpResponse:
    """The first steps of a workflow, for its row in the main list when it is opened."""
    context, _ = _workflow_context(request, pk, size=STEPS_IN_THE_LIST)
    return render(request, STEPS, context)


def _workflow_context(request: HttpRequest, pk: int, size: int | None = None) -> tuple[dict, bool]:
    """The workflow and its steps (`size`: only the first so many, without the graph)."""
    workflow = get_object_or_404(Workflow.objects.visible_to(access.owner_scope(request)), pk=pk)
    # At most plan.MAX_STEPS steps: all read at once, and counted here rather than by another query.
    steps = list(workflow.steps.order_by("step"))
    edges = list(workflow.edges.all())
    counts = StatusCounts(Counter(step.status for step in steps))
    rows = _step_rows(steps if size is None else steps[:size], edges)
    poll_url = reverse("workflow-detail", args=[pk])
    context = {
        "workflow": workflow,
        "title": gettext("Workflow #%(id)s") % {"id": workflow.pk},
        "heading": _heading(workflow),
        "counts": counts,
        "in_flight": counts.in_flight > 0,
        "rows": rows,
        "more": size is not None and len(steps) > size,
        "drawing": _drawing(rows, edges) if size is None else None,
        "with_actions": size is None,
        "poll_url": poll_url,
        "poll_etag": live.poll_etag(request, poll_url),
    }
    return context, context["in_flight"]


def _heading(workflow: Workflow) -> str:
    """The page's heading: "Workflow #7: its name", or how many steps it has when it has no name."""
    title = workflow.name or ngettext("%(count)s step", "%(count)s steps", workflow.size) % {"count": workflow.size}
    return gettext("Workflow #%(id)s: %(title)s") % {"id": workflow.pk, "title": title}


def _step_rows(steps: list[Computation], edges: Iterable[WorkflowEdge]) -> list[StepRow]:
    sources: dict[tuple[int, str, int | None], int] = {}  # (target, input, position) -> the step whose result it takes
    waits: dict[int, list[int]] = defaultdict(list)
    for edge in edges:
        if edge.input:
            sources[edge.target, edge.input, edge.position] = edge.source
        else:
            waits[edge.target].append(edge.source)
    return [
        StepRow(
            number=step.step,
            inputs=_inputs(step, sources),
            waits_for=_waits_for(sorted(waits[step.step])),
            computation=row,
        )
        for step, row in zip(steps, computation_rows(steps), strict=True)
    ]


def _inputs(step: Computation, sources: dict[tuple[int, str, int | None], int]) -> str:
    """Its inputs as a person reads them, each result it takes named by its step."""
    if step.spec is None:
        return inputs_text(step)
    shown = []
    for spec in step.spec.inputs:
        value = step.inputs.get(spec.name)
        if spec.many:
            values = value if isinstance(value, list) else []
            given = ", ".join(
                _given(each, sources.get((step.step, spec.name, position))) for position, each in enumerate(values)
            )
        else:
            given = _given(value, sources.get((step.step, spec.name, None)))
        shown.append(f"{gettext(spec.label)} = {given}")
    return " · ".join(shown)


def _given(value: object, source: int | None) -> str:
    """A value, or the result of step `source`: once it came, with its value."""
    if source is None:
        return "—" if value is None else grouped(str(value))
    if value is None:
        return gettext("result of step %(step)s") % {"step": source}
    return gettext("result of step %(step)s (%(value)s)") % {"step": source, "value": grouped(str(value))}


def _waits_for(sources: list[int]) -> str:
    if not sources:
        return ""
    numbers = ", ".join(str(source) for source in sources)
    return ngettext("Waits for step %(steps)s", "Waits for steps %(steps)s", len(sources)) % {"steps": numbers}


def _drawing(rows: list[StepRow], edges: Iterable[WorkflowEdge]) -> drawing.Drawing:
    nodes = [
        drawing.Node(
            number=row.number,
            label=row.computation.label,
            status=row.computation.status,
            status_label=row.computation.status_label,
            result=(row.computation.error or row.computation.result).text,
            url=row.computation.url,
        )
        for row in rows
    ]
    # One arrow between two steps: one that takes several of the other's results, or takes one and also waits for
    # it, is drawn once, as taking.
    waits_only: dict[tuple[int, int], bool] = {}
    for edge in edges:
        link = (edge.source, edge.target)
        waits_only[link] = waits_only.get(link, True) and not edge.input
    return drawing.draw(
        nodes, [drawing.Edge(source, target, only) for (source, target), only in sorted(waits_only.items())]
    )


@require_POST
def cancel_workflow(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, AuditEntry.Action.CANCEL)


@require_POST
def retry_workflow(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, AuditEntry.Action.RETRY)


def _act(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    workflow = get_object_or_404(Workflow.objects.visible_to(access.owner_scope(request)), pk=pk)
    if not access.may_act_on(request, workflow.owner_id):
        raise PermissionDenied
    selection = services.Selection(filters={"workflow": workflow.pk}, owner=access.owner_scope(request, acting=True))
    try:
        changed = submitting.act(request, action, selection=selection, actor=access.actor(request)).changed
    except throttling.Refused as refused:
        return refused.advise(acted(request, refused.message, then=workflow.get_absolute_url(), status=refused.status))
    if action == AuditEntry.Action.CANCEL:
        message = ngettext(
            "%(count)d step of the workflow cancelled.", "%(count)d steps of the workflow cancelled.", changed
        )
    else:
        # A step that takes others' results waits for them again rather than being queued at once.
        message = ngettext(
            "%(count)d step of the workflow retried.", "%(count)d steps of the workflow retried.", changed
        )
    return acted(request, message % {"count": changed}, then=workflow.get_absolute_url())
