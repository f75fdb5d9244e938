"""Batches: one operation over a range of one input's values, a computation per value, on a page of their own
that is live while any of them runs (the same 304 and 286 polling as the list)."""

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_POST, require_safe
from django_htmx.http import HttpResponseClientRedirect

from dashboard.computations.forms import BatchForm
from dashboard.computations.notifications import announce_endings, watch
from dashboard.computations.rows import value_rows
from dashboard.web import access, live, submitting, throttling
from dashboard.web.jinja import rendered
from dashboard.web.notices import acted
from dashboard.web.redirects import see_other
from tasks import services
from tasks.models import AuditEntry, Batch, Workflow
from tasks.operations import MAX_RANGE_VALUES

FORM_PAGE, PAGE = "dashboard/batch_form.html", "dashboard/section_page.html"
# Jinja2 templates, which the pages show rendered: the form, the batch's polled section and its values.
FORM, SECTION = "dashboard/batch_form_fields.jinja", "dashboard/batch_section.jinja"
VALUES = "dashboard/batch_rows.jinja"
ROWS_PER_PAGE = 100


@require_safe
def new_batch(request: HttpRequest) -> HttpResponse:
    form = BatchForm(operation=request.GET.get("operation"))
    return _form_answer(request, form, partial=live.wants_partial(request))


@require_POST
def create_batch(request: HttpRequest) -> HttpResponse:
    form = BatchForm(request.POST)

    def accepted(made: Batch | Workflow) -> HttpResponse:
        # A batch, or (its results combined) a workflow: its page, and a toast when all of it has ended.
        url = made.get_absolute_url()
        return watch(request, HttpResponseClientRedirect(url) if request.htmx else see_other(url), made)

    return submitting.submit(request, form, accepted=accepted, refused=lambda status: _form_page(request, form, status))


def _form_page(request: HttpRequest, form: BatchForm, status: int) -> HttpResponse:
    return _form_answer(request, form, partial=bool(request.htmx), status=status)


def _form_answer(request: HttpRequest, form: BatchForm, *, partial: bool, status: int = 200) -> HttpResponse:
    if partial:
        return render(request, FORM, {"form": form}, status=status)
    page = {"form_html": rendered(FORM, {"form": form}, request), "limit": MAX_RANGE_VALUES}
    return render(request, FORM_PAGE, page, status=status)


@require_safe
@live.polled
def batch_detail(request: HttpRequest, pk: int) -> HttpResponse:
    rows_from = _int(request.GET.get("from"))
    if live.wants_partial(request):
        path = _batch_url(pk, rows_from)
        response = live.partial(
            request, SECTION, path, lambda: _batch_context(request, pk, rows_from), keep=not rows_from
        )
        return announce_endings(request, response)
    context, _ = _batch_context(request, pk, rows_from)
    return render(request, PAGE, {"title": context["title"], "section": rendered(SECTION, context, request)})


@require_safe
def batch_rows(request: HttpRequest, pk: int) -> HttpResponse:
    """The first values of a batch, for its row in the main list when it is opened."""
    context, _ = _batch_context(request, pk, 0, size=10)
    return render(request, VALUES, context)


def _batch_context(request: HttpRequest, pk: int, rows_from: int, size: int = ROWS_PER_PAGE) -> tuple[dict, bool]:
    batch = get_object_or_404(Batch.objects.visible_to(access.owner_scope(request)), pk=pk)
    members = batch.computations.all()
    counts = members.status_counts()
    rows = list(members.filter(pk__gte=rows_from).order_by("pk")[: size + 1])
    next_from = rows[size].pk if len(rows) > size else None
    varied = next((spec for spec in batch.spec.inputs if spec.name == batch.varied), None) if batch.spec else None
    poll_url = _batch_url(pk, rows_from)
    work = batch.work_seconds
    context = {
        "batch": batch,
        "title": gettext("Batch #%(id)s") % {"id": batch.pk},
        "heading": gettext("Batch #%(id)s: %(label)s") % {"id": batch.pk, "label": batch.label},
        "work_text": ngettext(
            "; %(seconds)s second of simulated work each", "; %(seconds)s seconds of simulated work each", work
        )
        % {"seconds": work}
        if work
        else "",
        "varied_label": gettext(varied.label) if varied else batch.varied,
        "counts": counts,
        "in_flight": counts.in_flight > 0,
        "rows": value_rows(rows[:size], batch.varied),
        "rows_from": rows_from,
        "poll_url": poll_url,
        "poll_etag": live.poll_etag(request, poll_url),
        "next_from": next_from,
    }
    return context, context["in_flight"]


def _batch_url(pk: int, rows_from: int) -> str:
    """A batch page's normalised address, which it polls."""
    return reverse("batch-detail", args=[pk]) + (f"?from={rows_from}" if rows_from else "")


@require_POST
def cancel_batch(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, AuditEntry.Action.CANCEL)


@require_POST
def retry_batch(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, AuditEntry.Action.RETRY)


def _act(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    batch = get_object_or_404(Batch.objects.visible_to(access.owner_scope(request)), pk=pk)
    if not access.may_act_on(request, batch.owner_id):
        raise PermissionDenied
    selection = services.Selection(filters={"batch": batch.pk}, owner=access.owner_scope(request, acting=True))
    try:
        changed = submitting.act(request, action, selection=selection, actor=access.actor(request)).changed
    except throttling.Refused as refused:
        return refused.advise(acted(request, refused.message, then=batch.get_absolute_url(), status=refused.status))
    if action == AuditEntry.Action.CANCEL:
        message = ngettext(
            "%(count)d computation of the batch cancelled.", "%(count)d computations of the batch cancelled.", changed
        )
    else:
        message = ngettext(
            "%(count)d computation of the batch queued again.",
            "%(count)d computations of the batch queued again.",
            changed,
        )
    return acted(request, message % {"count": changed}, then=batch.get_absolute_url())


def _int(value: str | None) -> int:
    try:
        return max(int(value or 0), 0)
    except ValueError:
        return 0
