"""The error answers Django is told to use (handler500, CSRF_FAILURE_VIEW): each also in the form its asker reads,
the outage notice for HTMX, JSON for the API."""

from django.http import HttpRequest, HttpResponse, HttpResponseServerError, JsonResponse
from django.template.loader import render_to_string
from django.utils.translation import gettext
from django.views import csrf

from dashboard.web.access import is_json_api
from dashboard.web.middleware import outage_notice


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's 500, which an HTMX request shows in the page's outage notice."""
    return outage_notice(request, HttpResponseServerError(render_to_string("500.html")))


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """Django's CSRF failure page; for the JSON API, the same refusal in JSON."""
    if request.resolver_match and is_json_api(request, csrf_failure):
        message = gettext("CSRF check failed: send the csrftoken cookie's value in an X-CSRFToken header.")
        return JsonResponse({"error": message}, status=403)
    return csrf.csrf_failure(request, reason)
