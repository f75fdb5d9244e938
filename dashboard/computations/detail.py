"""One computation's page, live while it runs, and its cancel and retry (the same services as the list's bulk
actions and the API)."""

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_POST, require_safe

from dashboard.computations.notifications import announce_endings
from dashboard.computations.rows import computation_row, inputs_text
from dashboard.computations.timeline import history_lines, timeline
from dashboard.web import access, live, submitting, throttling
from dashboard.web.jinja import rendered
from dashboard.web.notices import acted
from dashboard.web.redirects import back_to
from tasks import services
from tasks.models import AuditEntry, Computation

DETAIL = "dashboard/section_page.html"
# A Jinja2 template (dashboard/web/jinja.py), which the page shows rendered.
DETAIL_SECTION = "dashboard/detail_section.jinja"
CANCEL, RETRY = AuditEntry.Action.CANCEL, AuditEntry.Action.RETRY


@require_safe
@live.polled
def computation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    if live.wants_partial(request):
        path = reverse("computation-detail", args=[pk])
        response = live.partial(request, DETAIL_SECTION, path, lambda: _detail_context(request, pk))
        return announce_endings(request, response)
    context, _ = _detail_context(request, pk)
    page = {"title": context["title"], "section": rendered(DETAIL_SECTION, context, request)}
    return render(request, DETAIL, page)


def _detail_context(request: HttpRequest, pk: int) -> tuple[dict, bool]:
    computation = get_object_or_404(Computation.objects.visible_to(access.owner_scope(request)), pk=pk)
    history = history_lines(computation.audit_entries.select_related("user")[:20])
    poll_url = reverse("computation-detail", args=[pk])
    work = computation.work_seconds
    context = {
        "computation": computation,
        "row": computation_row(computation),
        "title": gettext("Computation #%(id)s") % {"id": pk},
        "work_text": ngettext("%(seconds)s second", "%(seconds)s seconds", work) % {"seconds": work},
        "steps": timeline(computation, history),
        "inputs": inputs_text(computation),
        "poll_url": poll_url,
    }
    return {**context, "poll_etag": live.poll_etag(request, poll_url)}, computation.is_in_flight


@require_POST
def cancel_computation(request: HttpRequest, pk: int) -> HttpResponse:
    if submitting.act(request, CANCEL, selection=_one(request, pk), actor=access.actor(request)).changed:
        return _acted(request, pk, gettext("Computation #%(id)s is cancelled.") % {"id": pk})
    text = gettext("Computation #%(id)s has already ended: nothing to cancel.") % {"id": pk}
    return _acted(request, pk, text, status=409)


@require_POST
def retry_computation(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        changed = submitting.act(request, RETRY, selection=_one(request, pk), actor=access.actor(request)).changed
    except throttling.Refused as refused:
        return refused.advise(_acted(request, pk, refused.message, status=refused.status))
    if changed:
        return _acted(request, pk, gettext("Computation #%(id)s is queued again.") % {"id": pk})
    text = gettext("Only a failed or cancelled computation can be retried (#%(id)s).") % {"id": pk}
    return _acted(request, pk, text, status=409)


def _one(request: HttpRequest, pk: int) -> services.Selection:
    """The computation `pk` as a selection: 404 when it does not exist or is not the requester's to see, 403 when
    they see it and may not change it (a read-only operator's look at another's)."""
    computation = get_object_or_404(Computation.objects.visible_to(access.owner_scope(request)).only("owner"), pk=pk)
    if not access.may_act_on(request, computation.owner_id):
        raise PermissionDenied
    return services.Selection(ids=[pk], owner=access.owner_scope(request, acting=True))


def _acted(request: HttpRequest, pk: int, text: str, *, status: int = 200) -> HttpResponse:
    """After cancel or retry, from the computation's page or its row in the list: back where the post came from."""
    return acted(request, text, then=back_to(request, reverse("computation-detail", args=[pk])), status=status)
