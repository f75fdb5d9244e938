"""Request handling around every view: who the client is behind HAProxy, and a page for a database or broker outage."""

import hmac
import ipaddress
import logging
from collections.abc import Callable

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils.translation import gettext_lazy as _
from django_htmx.http import reselect, reswap, retarget
from redis.exceptions import RedisError

from dashboard.web.access import is_json_api

logger = logging.getLogger(__name__)

type GetResponse = Callable[[HttpRequest], HttpResponse]

RETRY_AFTER_SECONDS = 10
UNREACHABLE = {
    "database": _(
        "The database cannot be reached right now. Computations already submitted are safe; this page works again "
        "as soon as it is back."
    ),
    "broker": _(
        "The queue's server cannot be reached right now. Computations already submitted are safe; this page works "
        "again as soon as it is back."
    ),
}


class NotModifiedMiddleware:
    """A 304 carries only what updates the copy its client holds (RFC 9110, 15.4.5): ETag, Vary, Cache-Control,
    Date, Expires, Content-Location and htmx's answers. An open dashboard's unchanged polls are most of its traffic,
    and the policies and language of a response with no body were a third of each (HAProxy leaves them off too)."""

    KEEP = frozenset({"etag", "vary", "cache-control", "date", "expires", "content-location"})

    def __init__(self, get_response: GetResponse):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code == 304:
            for name in [name for name in response.headers if name.lower() not in self.KEEP]:
                if not name.lower().startswith("hx-"):
                    del response.headers[name]
        return response


class TrustedProxyMiddleware:
    """Forwarded headers are believed from HAProxy only: a peer in TRUSTED_PROXIES that, when PROXY_SECRET is set,
    also sends it (X-Dashboard-Proxy, which HAProxy adds). Any local user can connect from HAProxy's address; only
    HAProxy knows the secret.

    From HAProxy, REMOTE_ADDR becomes the client's address it forwarded, when that is an address; from anyone else
    the forwarded headers are dropped, so a client cannot pick the address its rate limits count against, claim
    HTTPS, or pass as the monitoring listener.
    """

    def __init__(self, get_response: GetResponse):
        self.get_response = get_response
        self.proxies = [ipaddress.ip_network(network) for network in settings.TRUSTED_PROXIES]
        self.secret = settings.PROXY_SECRET.encode()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self._from_haproxy(request):
            if client := client_address(request.META.get("HTTP_X_FORWARDED_FOR", "").rsplit(",", 1)[-1]):
                request.META["REMOTE_ADDR"] = client
        else:
            if request.META.pop("HTTP_X_FORWARDED_PROTO", None) is not None:
                # uWSGI's http-socket takes the header for the scheme itself; the replicas speak plain HTTP.
                request.META["wsgi.url_scheme"] = "http"
            for header in FORWARDED_HEADERS:
                request.META.pop(header, None)
        request.META.pop(PROXY_SECRET_HEADER, None)
        return self.get_response(request)

    def _from_haproxy(self, request: HttpRequest) -> bool:
        try:
            peer = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
        except ValueError:
            return False
        if not any(peer in network for network in self.proxies):
            return False
        sent = request.META.get(PROXY_SECRET_HEADER, "").encode()
        return not self.secret or hmac.compare_digest(sent, self.secret)


# What HAProxy sets on every request: the client's address and scheme, and the listener it came through.
FORWARDED_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_DASHBOARD_LISTENER")
PROXY_SECRET_HEADER = "HTTP_X_DASHBOARD_PROXY"  # noqa: S105 (a header name)


def client_address(text: str) -> str | None:
    """The address in `text` as the audit trail stores it (at most 39 characters), or None when it is not one. An
    IPv6 scope ("fe80::1%eth0") says nothing about the client beyond the proxy's host, and is dropped."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        address = ipaddress.IPv6Address(int(address))
    return str(address)


def through_monitoring_listener(request: HttpRequest) -> bool:
    """Whether HAProxy's monitoring listener (not published) passed this request on."""
    return request.META.get("HTTP_X_DASHBOARD_LISTENER") == "monitoring"


class ServerUnavailableMiddleware:
    """A view that cannot reach the database or the broker answers 503 saying which, not a traceback or a 500.

    The page is rendered without the request's context processors (they could reach for the database again).
    An HTMX request gets it in the page's outage notice, the rest of the page untouched; the JSON API gets it as
    its other errors, {"error": ...}.
    """

    def __init__(self, get_response: GetResponse):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, OperationalError | InterfaceError):
            reason = "database"
        elif isinstance(exception, RedisError):
            reason = "broker"
        else:
            return None
        logger.warning("%s unreachable, answering 503 for %s: %s", reason, request.path, exception)
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        if is_json_api(request):
            return JsonResponse({"error": str(UNREACHABLE[reason])}, status=503, headers=headers)
        page = render_to_string("503.html", {"message": UNREACHABLE[reason]})
        return outage_notice(request, HttpResponse(page, status=503, headers=headers))


def outage_notice(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """For HTMX, puts an error page's message in the page's #outage notice instead of where the request aimed
    (HAProxy's own error pages carry the same headers)."""
    if request.headers.get("HX-Request"):
        reselect(reswap(retarget(response, "#outage"), "innerHTML"), ".notice")
    return response
