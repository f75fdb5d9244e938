"""The Webhooks page: a signed-in person's webhooks, the form to register one (its secret shown on the answer, this
once) and removing one; and each webhook's page, with its latest deliveries. Accounts on or off, a visitor who is not
signed in is sent to sign in: a webhook is always someone's. A person sees their own webhooks only (another's answers
404). Everything goes through tasks.webhooks.registering."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from dashboard.web import access
from dashboard.web.redirects import see_other
from tasks.models import Webhook
from tasks.webhooks import registering

PAGE, DETAIL = "dashboard/webhooks.html", "dashboard/webhook.html"


class WebhookForm(forms.Form):
    url = forms.CharField(
        label=_("URL"),
        max_length=2000,
        help_text=_("Called with a POST of JSON each time one of your computations or batches ends."),
    )


@access.signed_in
@require_http_methods(["GET", "HEAD", "POST"])
def webhooks_page(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _register(request)
    return _page(request, WebhookForm())


def _register(request: HttpRequest) -> HttpResponse:
    """201 with the new webhook's secret, never stored for the page nor cached; 422 with the form's message."""
    form = WebhookForm(request.POST)
    if form.is_valid():
        try:
            webhook, secret = registering.register(request.user, form.cleaned_data["url"])
        except registering.Refused as refused:
            form.add_error("url", refused.message)
        else:
            response = _page(request, WebhookForm(), status=201, registered=webhook, secret=secret)
            add_never_cache_headers(response)
            return response
    return _page(request, form, status=422)


def _page(request: HttpRequest, form: WebhookForm, *, status: int = 200, **shown: object) -> HttpResponse:
    context = {
        "form": form,
        "webhooks": registering.owned_by(request.user),
        "allowed_hosts": settings.WEBHOOK_ALLOWED_HOSTS,
        **shown,
    }
    return render(request, PAGE, context, status=status)


@access.signed_in
@require_safe
def webhook_detail(request: HttpRequest, pk: int) -> HttpResponse:
    webhook = _theirs(request, pk)
    return render(request, DETAIL, {"webhook": webhook, "deliveries": registering.log(webhook)})


@access.signed_in
@require_POST
def remove_webhook(request: HttpRequest, pk: int) -> HttpResponse:
    webhook = _theirs(request, pk)
    registering.remove(webhook)
    messages.success(request, gettext("The webhook for %(url)s is removed.") % {"url": webhook.url})
    return see_other(reverse("webhooks"))


def _theirs(request: HttpRequest, pk: int) -> Webhook:
    return get_object_or_404(registering.owned_by(request.user), pk=pk)
