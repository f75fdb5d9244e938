"""Optional accounts (DASHBOARD_LOGIN_REQUIRED): who may open the dashboard, and whose computations they see.

Off, the dashboard is open and everyone sees everything (a first look, a trusted network). On, every page, the
API and the exports need a signed-in person, who sees and acts on their own computations and batches only;
staff see all. Another person's computation answers 404, exactly as one that does not exist. The admin site
keeps its own login, and health checks and metrics stay open to the load balancer and Prometheus (HAProxy
keeps /metrics off the public front).
"""

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import middleware as auth_middleware
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView, redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import resolve_url
from django.urls import path, reverse
from django.utils.translation import gettext, ngettext
from django.views import csrf
from django_htmx.http import HttpResponseClientRedirect

from . import throttling


def owner_scope(request: HttpRequest) -> AbstractBaseUser | None:
    """Whose computations this request sees and acts on: None for everyone's (accounts off, or staff)."""
    if not settings.DASHBOARD_LOGIN_REQUIRED or request.user.is_staff:
        return None
    return request.user


def owner_of_new(request: HttpRequest) -> AbstractBaseUser | None:
    """Who owns what this request submits: the signed-in person, in either mode."""
    return request.user if request.user.is_authenticated else None


def json_api(view):
    """Marks a view of the JSON API: without a session it answers 401 in JSON rather than the login page."""
    view.json_api = True
    return view


class LoginRequiredMiddleware(auth_middleware.LoginRequiredMiddleware):
    """Django's, when DASHBOARD_LOGIN_REQUIRED is on: a page goes to the login page and back; an HTMX request
    sends the whole page there (not the login form into a partial); the API answers 401."""

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponse | None:
        if not settings.DASHBOARD_LOGIN_REQUIRED or request.path.startswith(reverse("admin:index")):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)

    def handle_no_permission(self, request: HttpRequest, view_func) -> HttpResponse:
        if getattr(view_func, "json_api", False):
            return JsonResponse({"error": gettext("Sign in first.")}, status=401)
        if request.htmx:
            page = request.htmx.current_url_abs_path or "/"
            return HttpResponseClientRedirect(redirect_to_login(page, resolve_url(settings.LOGIN_URL)).url)
        return super().handle_no_permission(request, view_func)


class SignInLimit:
    """For a login form: past LOGIN_RATE_LIMIT attempts a minute per client address, an attempt is refused before
    its password is checked (guessing is slow), and the response becomes a 429 (`limited`)."""

    def clean(self) -> dict:
        if wait := throttling.sign_in_wait(self.request):
            self.request.sign_in_wait = wait
            message = ngettext(
                "Too many attempts to sign in from your address: try again in %(seconds)d second.",
                "Too many attempts to sign in from your address: try again in %(seconds)d seconds.",
                wait,
            )
            raise forms.ValidationError(message % {"seconds": wait}, code="throttled")
        return super().clean()


def limited(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """429 with Retry-After when SignInLimit refused the attempt."""
    if wait := getattr(request, "sign_in_wait", 0):
        response.status_code = 429
        response["Retry-After"] = str(wait)
    return response


class SignInForm(SignInLimit, AuthenticationForm):
    pass


class AdminSignInForm(SignInLimit, AdminAuthenticationForm):
    pass


class SignInView(LoginView):
    """Django's login, in the dashboard's style, with the sign-in limit."""

    authentication_form = SignInForm
    redirect_authenticated_user = True
    template_name = "dashboard/account/login.html"

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        return limited(request, super().post(request, *args, **kwargs))


class AdminSite(admin.AdminSite):
    """Django's admin site, whose login counts against the same limit as the dashboard's: one budget of guesses
    per address for both."""

    login_form = AdminSignInForm
    index_template = "admin/dashboard/index.html"

    def get_urls(self) -> list:
        from .admin import queues_view  # the admin module registers its pages on this site: imported after it

        return [path("queues/", self.admin_view(queues_view), name="queues"), *super().get_urls()]

    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        return limited(request, super().login(request, extra_context))


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """Django's CSRF failure page; for the JSON API, the same refusal in JSON."""
    match = request.resolver_match
    if match and getattr(match.func, "json_api", False):
        message = gettext("CSRF check failed: send the csrftoken cookie's value in an X-CSRFToken header.")
        return JsonResponse({"error": message}, status=403)
    return csrf.csrf_failure(request, reason)
