"""A person's API tokens page: the tokens they made (name, first characters, scope, created, last used, expiry),
the form to make one (the token shown on the answer, this once, and never again: only its hash is kept), and
revoking one. Always the signed-in person's own; staff see everyone's in the admin."""

from datetime import timedelta

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods, require_POST

from dashboard.web import access
from dashboard.web.redirects import see_other
from tasks.models import ApiToken

PAGE = "dashboard/account/tokens.html"
# Nothing a person can grow without bound: a script each is plenty.
MAX_TOKENS_PER_PERSON = 50
EXPIRY_CHOICES = [("", _("Never")), ("7", _("In 7 days")), ("30", _("In 30 days")), ("90", _("In 90 days"))]


class TokenForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100, help_text=_("What it is for: the audit trail names it."))
    read_only = forms.BooleanField(label=_("Read-only"), required=False, help_text=_("It may read, not change."))
    expires = forms.TypedChoiceField(
        label=_("Expires"), choices=EXPIRY_CHOICES, coerce=int, empty_value=None, required=False
    )


@access.signed_in
@require_http_methods(["GET", "HEAD", "POST"])
def tokens_page(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _page(request, TokenForm())
    form = TokenForm(request.POST)
    if form.is_valid() and ApiToken.objects.filter(user=request.user).count() >= MAX_TOKENS_PER_PERSON:
        form.add_error(
            None,
            gettext("You have %(count)s tokens, the most one person may have: revoke one first.")
            % {"count": MAX_TOKENS_PER_PERSON},
        )
    if not form.is_valid():
        return _page(request, form, status=422)
    days = form.cleaned_data["expires"]
    made, token = ApiToken.objects.issue(
        request.user,
        form.cleaned_data["name"],
        read_only=form.cleaned_data["read_only"],
        expires_at=timezone.now() + timedelta(days=days) if days else None,
    )
    response = _page(request, TokenForm(), status=201, made=made, token=token)
    add_never_cache_headers(response)  # the token is in this page, once: no cache keeps it
    return response


def _page(request: HttpRequest, form: TokenForm, *, status: int = 200, **shown: object) -> HttpResponse:
    tokens = ApiToken.objects.filter(user=request.user)
    context = {"form": form, "tokens": tokens, "docs": reverse("api-v1:openapi-view"), **shown}
    return render(request, PAGE, context, status=status)


@access.signed_in
@require_POST
def revoke_token(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken.objects.filter(user=request.user), pk=pk)
    token.delete()
    messages.success(request, gettext("The token “%(name)s” is revoked.") % {"name": token.name})
    return see_other(reverse("api-tokens"))
