"""/api/v1/webhooks: a person's webhooks, as on their Webhooks page (tasks.webhooks.registering): list, register
(the secret in the answer, this once), read one with its latest deliveries, remove. Always a person's own: a caller
with neither a token nor a signed-in session is 401 even with accounts off."""

from datetime import datetime

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.translation import gettext
from ninja import Field, Router, Schema, Status

from dashboard.api import schemas
from dashboard.api.problems import Problem
from tasks.models import Webhook
from tasks.webhooks import registering

router = Router(tags=["webhooks"])


class WebhookIn(schemas.In):
    url: str = Field(max_length=2000, description="Called with a signed POST of JSON when your work ends.")


class WebhookOut(Schema):
    id: int
    url: str
    created_at: datetime


class WebhookMade(WebhookOut):
    secret: str = Field(description="What signs the deliveries (Standard Webhooks): shown this once.")


class DeliveryOut(Schema):
    delivery_id: str
    event: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None


class WebhookDetail(WebhookOut):
    deliveries: list[DeliveryOut]


@router.get("/webhooks", response=list[WebhookOut], summary="Your webhooks")
def webhooks(request: HttpRequest) -> list[dict]:
    return [webhook_out(each) for each in registering.owned_by(_person(request))]


@router.post("/webhooks", response={201: WebhookMade}, summary="Register a webhook")
def register(request: HttpRequest, payload: WebhookIn, response: HttpResponse) -> Status:
    try:
        webhook, secret = registering.register(_person(request), payload.url)
    except registering.Refused as refused:
        error = {"pointer": "#/url", "detail": refused.message}
        raise Problem(422, "invalid", refused.message, errors=[error]) from refused
    response["Location"] = reverse("api-v1:webhook", args=[webhook.pk])
    return Status(201, {**webhook_out(webhook), "secret": secret})


@router.get("/webhooks/{int:pk}", response=WebhookDetail, url_name="webhook", summary="One, with its deliveries")
def webhook(request: HttpRequest, pk: int) -> dict:
    found = _theirs(request, pk)
    deliveries = [
        {**{field: getattr(each, field) for field in DeliveryOut.model_fields}, "delivery_id": str(each.delivery_id)}
        for each in registering.log(found)
    ]
    return {**webhook_out(found), "deliveries": deliveries}


@router.delete("/webhooks/{int:pk}", response={204: None}, summary="Remove one")
def remove(request: HttpRequest, pk: int) -> Status:
    registering.remove(_theirs(request, pk))
    return Status(204, None)


def _person(request: HttpRequest) -> object:
    if not request.user.is_authenticated:
        raise Problem(401, "unauthorized", gettext("A webhook is a person's: send your token."))
    return request.user


def _theirs(request: HttpRequest, pk: int) -> Webhook:
    found = registering.owned_by(_person(request)).filter(pk=pk).first()
    if found is None:
        raise Problem(404, "not-found", gettext("No webhook of yours has this id."))
    return found


def webhook_out(webhook: Webhook) -> dict:
    return {"id": webhook.pk, "url": webhook.url, "created_at": webhook.created_at}
