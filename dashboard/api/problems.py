"""Errors as data (RFC 9457): every 4xx and 5xx of /api/v1/ is `application/problem+json`, with a stable `type`, a
readable `title`, the `status`, a `detail` for this occurrence and, for invalid input, `errors`: each with a JSON
pointer into the request's body (or the parameter's name) and its message.

The API's own refusals raise Problem. ProblemMiddleware turns whatever else ends in an error under /api/v1/ (a path
that does not exist, a method a path does not take, a body over the limit, Django's 500) into one, so that a
program never has to read an HTML page."""

import json
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from dashboard.web.access import API_V1

MEDIA_TYPE = "application/problem+json"
# The types, by slug: what each means, as its title. A type is a URN: stable, and never taken for a page to open.
TITLES = {
    "malformed": _("The request could not be read."),
    "invalid": _("The request is not valid."),
    "unauthorized": _("A valid API token is needed."),
    "forbidden": _("This is not yours to change."),
    "read-only": _("This token is read-only."),
    "operators-only": _("For operators only."),
    "csrf": _("CSRF check failed."),
    "not-found": _("Nothing has this address."),
    "method-not-allowed": _("This address does not take this method."),
    "conflict": _("The computation is not in a state this action applies to."),
    "too-large": _("The request's body is too large."),
    "unsupported-media-type": _("The request's body must be JSON."),
    "rate-limited": _("Too many requests."),
    "queue-full": _("The queue has no room for this."),
    "unavailable": _("A service the API needs is unreachable."),
    "server-error": _("The server failed."),
}
FALLBACK = {
    400: "malformed",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "too-large",
    415: "unsupported-media-type",
    422: "invalid",
    429: "rate-limited",
    503: "unavailable",
}


def type_uri(slug: str) -> str:
    return f"urn:computation-dashboard:problem:{slug}"


class Problem(Exception):
    """A refusal of the API, answered as a problem detail. `errors`: each {"pointer": "#/inputs/x"} (in the body) or
    {"parameter": "limit"} (in the query or the path), with its "detail"; `extra`: members of the problem's own (the
    computation a refused action was for)."""

    def __init__(
        self,
        status: int,
        slug: str,
        detail: str = "",
        *,
        errors: list[dict[str, str]] = (),
        retry_after: int | None = None,
        extra: dict | None = None,
    ):
        super().__init__(detail or str(TITLES[slug]))
        self.status, self.slug, self.detail = status, slug, detail
        self.errors, self.retry_after, self.extra = list(errors), retry_after, extra or {}

    def response(self, request: HttpRequest) -> HttpResponse:
        body = {
            "type": type_uri(self.slug),
            "title": str(TITLES[self.slug]),
            "status": self.status,
            "detail": self.detail or str(TITLES[self.slug]),
            "instance": request.path,
        }
        if self.errors:
            body["errors"] = self.errors
        response = HttpResponse(json.dumps(body | self.extra, default=str), status=self.status, content_type=MEDIA_TYPE)
        if self.retry_after:
            response["Retry-After"] = str(self.retry_after)
        return response


class ProblemMiddleware:
    """Under /api/v1/: refuses a body over API_MAX_BODY_BYTES before anything reads it (413), and answers any error
    that is not a problem detail yet (Django's 404, 405 or 500, a refusal of a middleware) as one, keeping its
    status and headers."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_V1):
            return self.get_response(request)
        if _declared_length(request) > settings.API_MAX_BODY_BYTES:
            detail = gettext("A request's body may have at most %(bytes)s bytes.") % {
                "bytes": settings.API_MAX_BODY_BYTES
            }
            return Problem(413, "too-large", detail).response(request)
        response = self.get_response(request)
        if response.status_code < 400 or response.get("Content-Type", "").startswith(MEDIA_TYPE):
            return response
        status = response.status_code
        slug = FALLBACK.get(status, "server-error" if status >= 500 else "malformed")
        problem = Problem(status, slug, _error_text(response))
        answer = problem.response(request)
        for header in ("Allow", "Retry-After", "WWW-Authenticate"):
            if header in response:
                answer[header] = response[header]
        return answer


def _error_text(response: HttpResponse) -> str:
    """The reason a JSON error of the web's own gives ({"error": …}: an outage's 503), else none."""
    if not response.get("Content-Type", "").startswith("application/json"):
        return ""
    try:
        error = json.loads(response.content).get("error")
    except (ValueError, AttributeError):
        return ""
    return error if isinstance(error, str) else ""


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0
