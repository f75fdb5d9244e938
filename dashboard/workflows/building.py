"""The workflow builder: steps in a form that htmx posts on every change to be drawn again, with the graph of what
they make (drawn on the server); "Add a step" and "Remove" post it the same way, and without script each button
posts it and gets the whole page back. Creating it is a submission like a batch's."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST, require_safe
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from dashboard.computations.notifications import watch
from dashboard.web import live, submitting
from dashboard.web.jinja import rendered
from dashboard.web.redirects import see_other
from dashboard.workflows.forms import WorkflowForm, edited
from tasks.models import Workflow
from tasks.workflows.plan import MAX_STEPS, MAX_WORK_SECONDS

PAGE = "dashboard/workflow_form.html"
# A Jinja2 template, which the page shows rendered: the form and its graph.
BUILDER = "dashboard/workflow_builder.jinja"


@require_safe
@vary_on_headers("HX-Request")
def new_workflow(request: HttpRequest) -> HttpResponse:
    return _answer(request, WorkflowForm(), partial=live.wants_partial(request))


@require_POST
def preview_workflow(request: HttpRequest) -> HttpResponse:
    """The builder as posted, with a step added or removed when a button says so (`do`), and its graph. Changes
    nothing; a step just added or removed shows no messages yet."""
    data, focus = edited(request.POST)
    form = WorkflowForm(data, quiet="do" in request.POST)
    if not form.quiet:
        form.is_valid()
    return _answer(request, form, partial=bool(request.htmx), focus=focus, keep_typed=not form.quiet)


@require_POST
def create_workflow(request: HttpRequest) -> HttpResponse:
    form = WorkflowForm(request.POST)

    def accepted(workflow: Workflow) -> HttpResponse:
        url = workflow.get_absolute_url()
        return watch(request, HttpResponseClientRedirect(url) if request.htmx else see_other(url), workflow)

    return submitting.submit(request, form, accepted=accepted, refused=lambda status: _refused(request, form, status))


def _refused(request: HttpRequest, form: WorkflowForm, status: int) -> HttpResponse:
    return _answer(request, form, partial=bool(request.htmx), status=status)


def _answer(
    request: HttpRequest,
    form: WorkflowForm,
    *,
    partial: bool,
    status: int = 200,
    focus: int | None = None,
    keep_typed: bool = False,
) -> HttpResponse:
    """The builder, its page around it unless `partial`; `focus`: the step whose operation takes the focus;
    `keep_typed`: the page keeps what is typed in its fields (a preview after a change, which may arrive after more
    was typed)."""
    context = {
        "form": form,
        "keep_typed": keep_typed,
        "drawing": form.drawing(),
        "focus": focus,
        "limit": MAX_STEPS,
        "max_work_seconds": MAX_WORK_SECONDS,
    }
    if partial:
        return render(request, BUILDER, context, status=status)
    page = {"builder_html": rendered(BUILDER, context, request), "limit": MAX_STEPS}
    return render(request, PAGE, page, status=status)
