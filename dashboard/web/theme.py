"""The colour scheme: the system's (prefers-color-scheme) unless the person picks light or dark in the header,
a form post remembered in a cookie for a year. No script: the server writes the choice on <html data-theme>."""

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.utils.translation import gettext, gettext_lazy
from django.views.decorators.http import require_POST

from dashboard.web.redirects import back_to, see_other

COOKIE = "dashboard_theme"
THEMES = {"auto": gettext_lazy("Auto"), "light": gettext_lazy("Light"), "dark": gettext_lazy("Dark")}


def chosen(request: HttpRequest) -> str:
    theme = request.COOKIES.get(COOKIE, "auto")
    return theme if theme in THEMES else "auto"


def context(request: HttpRequest) -> dict:
    """For every template: the theme in force, and the choices."""
    return {"theme": chosen(request), "themes": THEMES.items()}


@login_not_required
@require_POST
def set_theme(request: HttpRequest) -> HttpResponse:
    theme = request.POST.get("theme", "")
    if theme not in THEMES:
        return HttpResponseBadRequest(gettext("Unknown colour scheme."), content_type="text/plain; charset=utf-8")
    response = see_other(back_to(request, "/"))
    if theme == "auto":
        response.delete_cookie(COOKIE, samesite="Lax")
    else:
        response.set_cookie(
            COOKIE, theme, max_age=365 * 86_400, httponly=True, samesite="Lax", secure=settings.SESSION_COOKIE_SECURE
        )
    return response
