"""Signing in: the dashboard's login page and the admin's, one budget of guesses per client address for both
(LOGIN_RATE_LIMIT, dashboard.web.throttling); past it an attempt is refused before its password is checked."""

from collections.abc import Callable

from django import forms
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse
from django.urls import path

from dashboard.web import throttling


class SignInLimit:
    """For a login form: past LOGIN_RATE_LIMIT attempts a minute per client address, an attempt is refused before
    its password is checked (guessing is slow), and the response becomes a 429 (`limited`)."""

    def clean(self) -> dict:
        if wait := throttling.sign_in_wait(self.request):
            self.request.sign_in_wait = wait
            raise forms.ValidationError(throttling.too_many_attempts(wait), code="throttled")
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

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list = []

    def add_page(self, route: str, view: Callable, name: str) -> None:
        """A page of the site's own beside the models' (dashboard.admin adds the queues'), behind its sign-in."""
        self._pages.append(path(route, self.admin_view(view), name=name))

    def get_urls(self) -> list:
        return [*self._pages, *super().get_urls()]

    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        return limited(request, super().login(request, extra_context))
