"""A person's webhooks: registering one (its URL checked, its secret made and handed back once), removing one, and
what the pages and the API list. Bad input is refused (Refused, with a message a person reads) having written
nothing."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.db.models import QuerySet
from django.utils.translation import gettext, ngettext

from ..models import Webhook, WebhookDelivery
from . import destinations, signing
from .destinations import Refused

# A webhook's page shows its latest deliveries, this many.
LOG_SIZE = 50


def register(owner: AbstractBaseUser, url: str) -> tuple[Webhook, str]:
    """A new webhook of `owner`'s for `url`, and its secret, which only its deliveries' signatures show again.
    Refused when the URL may not have one (destinations.check), when they have one for it already, or
    WEBHOOK_MAX_PER_PERSON."""
    destinations.check(url)
    with transaction.atomic():
        # Their registrations one at a time, so that two at once cannot both pass the cap.
        get_user_model().objects.select_for_update().filter(pk=owner.pk).exists()
        theirs = Webhook.objects.filter(owner=owner)
        if theirs.filter(url=url).exists():
            raise Refused(gettext("You have a webhook for this URL already."))
        if theirs.count() >= (cap := settings.WEBHOOK_MAX_PER_PERSON):
            message = ngettext(
                "You have %(count)d webhook already, the most one person may have: remove one first.",
                "You have %(count)d webhooks already, the most one person may have: remove one first.",
                cap,
            )
            raise Refused(message % {"count": cap})
        secret = signing.new_secret()
        return Webhook.objects.create(owner=owner, url=url, secret=secret), secret


def remove(webhook: Webhook) -> None:
    """The webhook goes, and its deliveries with it: those not made yet never will be."""
    webhook.delete()


def owned_by(owner: AbstractBaseUser) -> QuerySet[Webhook]:
    """A person's webhooks, the newest first."""
    return Webhook.objects.filter(owner=owner).order_by("-pk")


def log(webhook: Webhook) -> QuerySet[WebhookDelivery]:
    """The webhook's latest deliveries (LOG_SIZE), the newest first."""
    return webhook.deliveries.order_by("-pk")[:LOG_SIZE]
