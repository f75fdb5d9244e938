"""The API's way through dashboard.web.submitting, the one gate for work: its refusals as problem details."""

from django.http import HttpRequest
from django.utils.translation import gettext

from dashboard.api.problems import Problem
from dashboard.web import access, submitting, throttling
from tasks import services
from tasks.models import AuditEntry


def submitted[T](request: HttpRequest, form: submitting.SubmissionForm[T], pointers: dict[str, str]) -> T:
    """Counts, validates and submits, as the page does; a refusal as a problem, each field's error in its place."""
    try:
        return submitting.submission(request, form, owner=access.owner_of_new(request))
    except throttling.Refused as refused:
        if refused.status == 422:
            errors = [
                {"pointer": _pointer(field, pointers), "detail": str(e)}
                for field, messages in form.errors.items()
                for e in messages
            ]
            raise Problem(422, "invalid", gettext("The submission is not valid."), errors=errors) from refused
        raise refusal(refused) from refused


def _pointer(field: str, pointers: dict[str, str]) -> str:
    """Where a form's error is in the body: "#" for the whole, a field's own pointer, or one the form names."""
    if field == "__all__":
        return "#"
    return pointers.get(field, field if field.startswith("#") else f"#/inputs/{field}")


def refusal(refused: throttling.Refused) -> Problem:
    slug = refused.kind or ("queue-full" if refused.status == 503 else "rate-limited")
    return Problem(refused.status, slug, refused.message, retry_after=refused.retry_after)


def act(request: HttpRequest, action: str, selection: services.Selection) -> services.Outcome:
    try:
        return submitting.act(request, action, selection=selection, actor=access.actor(request, AuditEntry.Source.API))
    except throttling.Refused as refused:
        raise refusal(refused) from refused
