"""The web's one path from a posted submission form (a computation, a batch) to what it created, or to the form
again with the reason it was refused."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from dashboard.computations.notifications import watch
from dashboard.web import throttling
from dashboard.web.access import owner_of_new


def submit[T](
    request: HttpRequest, form: throttling.SubmissionForm[T], *, accepted: Callable[[T], HttpResponse],
    refused: Callable[[int], HttpResponse], watched: bool = True,
) -> HttpResponse:  # fmt: skip
    """Counts, validates and submits the form (throttling.submission). `accepted` answers with what it created,
    which this browser then watches for its toast (a computation, a batch: `watched`); `refused` with the form
    again in the refusal's status, its reason above the fields. A refusal recorded nothing."""
    try:
        created = throttling.submission(request, form, owner=owner_of_new(request))
    except throttling.Refused as refusal:
        if refusal.message:
            form.add_error(None, refusal.message)
        return refusal.advise(refused(refusal.status))
    return watch(request, accepted(created), created) if watched else accepted(created)
