"""Who may do what: people, with optional accounts (DASHBOARD_LOGIN_REQUIRED), and operators, always signed in.

People. Off, the dashboard is open: anyone may submit, watch, cancel and retry computations, and sees everything
(a first look, a trusted network). On, every page, the API and the exports need a signed-in person, who sees and
acts on their own computations, batches and schedules only. Another person's answers 404, exactly as one that
does not exist. Health checks and metrics stay open to the load balancer and Prometheus (HAProxy keeps /metrics
off the public front).

Operators, whatever DASHBOARD_LOGIN_REQUIRED says: staff with a permission that the admin gives (Django's groups
"Operators" and "Read-only operators" carry them). `tasks.oversee` opens the operator pages (Workers, Storage),
the queues' and workers' figures in the API, the admin's audit trail, and everyone's computations when accounts
are on; `tasks.operate` adds the controls (pause, resume and purge a queue; grow, shrink and shut down a worker;
the admin's actions on anyone's computations and schedules). A visitor who is not signed in is sent to sign in (the
API answers 401); one signed in without the permission gets 403.
"""

import functools
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import middleware as auth_middleware
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import resolve_url
from django.urls import reverse
from django.utils.translation import gettext
from django_htmx.http import HttpResponseClientRedirect

from tasks.models import AuditEntry
from tasks.services import Actor

API_V1 = "/api/v1/"


def may_oversee(user: AbstractBaseUser | AnonymousUser) -> bool:
    """A read-only operator, at least: sees the operator pages and everyone's work, and changes nothing."""
    return _staff(user) and (user.has_perm("tasks.oversee") or user.has_perm("tasks.operate"))


def may_operate(user: AbstractBaseUser | AnonymousUser) -> bool:
    """An operator: steers the queues and workers, and acts on anyone's computations and schedules."""
    return _staff(user) and user.has_perm("tasks.operate")


def _staff(user: AbstractBaseUser | AnonymousUser) -> bool:
    return user.is_active and user.is_staff


def owner_scope(request: HttpRequest, *, acting: bool = False) -> AbstractBaseUser | None:
    """Whose computations, batches and schedules this request sees, or acts on: None for everyone's (accounts off,
    but not through an API token, which is always its person's; an operator; for seeing, a read-only operator too),
    else the signed-in person's."""
    if not settings.DASHBOARD_LOGIN_REQUIRED and getattr(request, "api_token", None) is None:
        return None
    if (may_operate if acting else may_oversee)(request.user):
        return None
    return request.user


def may_act_on(request: HttpRequest, owner_id: int | None) -> bool:
    """Whether this request may change something it sees, owned by the user `owner_id` (a read-only operator sees
    everyone's with accounts on, and changes only their own)."""
    scope = owner_scope(request, acting=True)
    return scope is None or scope.pk == owner_id


def context(request: HttpRequest) -> dict:
    """For every page: the operator links and controls (asked only by a template that shows them)."""
    return {"may_oversee": lambda: may_oversee(request.user), "may_operate": lambda: may_operate(request.user)}


def for_operators(allowed: Callable[[AbstractBaseUser | AnonymousUser], bool]) -> Callable[[Callable], Callable]:
    """A view for operators (`allowed`: may_oversee or may_operate), in either accounts mode: a visitor who is not
    signed in is sent to sign in (the API answers 401), one signed in without the permission gets 403."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def guarded(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            if allowed(request.user):
                return view(request, *args, **kwargs)
            if not request.user.is_authenticated:
                return sign_in_first(request, view)
            if is_json_api(request, view):
                return JsonResponse({"error": gettext("For operators only.")}, status=403)
            raise PermissionDenied

        return guarded

    return decorator


overseers_only = for_operators(may_oversee)
operators_only = for_operators(may_operate)


def signed_in(view: Callable) -> Callable:
    """A view of what is always someone's (their API tokens, their webhooks): whoever is not signed in goes to sign
    in first, with accounts off too."""

    @functools.wraps(view)
    def guarded(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if not request.user.is_authenticated:
            return sign_in_first(request, view)
        return view(request, *args, **kwargs)

    return guarded


def sign_in_first(request: HttpRequest, view: Callable) -> HttpResponse:
    """A page goes to the login page and back; an HTMX request sends the whole page there (not the login form into
    a partial); the API answers 401."""
    if is_json_api(request, view):
        return JsonResponse({"error": gettext("Sign in first.")}, status=401)
    page = (request.htmx.current_url_abs_path or "/") if request.htmx else request.get_full_path()
    login = redirect_to_login(page, resolve_url(settings.LOGIN_URL))
    return HttpResponseClientRedirect(login.url) if request.htmx else login


def actor(request: HttpRequest, source: str = AuditEntry.Source.DASHBOARD) -> Actor:
    """Who acts through a web request, for the audit trail: the person, if signed in, the client's address as
    HAProxy forwarded it (dashboard.web.middleware.TrustedProxyMiddleware), and the API token's name if any."""
    token = getattr(request, "api_token", None)
    return Actor(
        source=source,
        address=request.META.get("REMOTE_ADDR"),
        user=request.user,
        token_name=token.name if token else "",
    )


def owner_of_new(request: HttpRequest) -> AbstractBaseUser | None:
    """Who owns what this request submits: the signed-in person, in either mode."""
    return request.user if request.user.is_authenticated else None


def json_api(view):
    """Marks a view of the JSON API: without a session it answers 401 in JSON rather than the login page."""
    view.json_api = True
    return view


def is_json_api(request: HttpRequest, view: Callable | None = None) -> bool:
    """Whether the request's view is marked (the mark is on the outermost decorator, which `view` may be inside)."""
    match = request.resolver_match
    return request.path.startswith(API_V1) or getattr(match.func if match else view, "json_api", False)


class LoginRequiredMiddleware(auth_middleware.LoginRequiredMiddleware):
    """Django's, when DASHBOARD_LOGIN_REQUIRED is on, answering as sign_in_first does."""

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponse | None:
        # The admin has its own sign-in; /api/v1/ its own authentication (dashboard.api.auth), with tokens.
        if not settings.DASHBOARD_LOGIN_REQUIRED or request.path.startswith((reverse("admin:index"), API_V1)):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)

    def handle_no_permission(self, request: HttpRequest, view_func) -> HttpResponse:
        return sign_in_first(request, view_func)
