"""Webhooks: URLs a person registers, called when one of their computations or batches ends; and each call's delivery,
attempted from the workers until it is answered with a 2xx or its day runs out (tasks.webhooks)."""

import uuid
from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# Of a failed attempt's error, what is kept.
ERROR_LENGTH = 300


class Webhook(models.Model):
    """A person's URL, called with every end of their computations and batches, signed with its secret."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner"), on_delete=models.CASCADE, related_name="webhooks"
    )
    url = models.URLField(_("URL"), max_length=2000)
    # Standard Webhooks' form ("whsec_" and base64): kept as it is, since every delivery is signed with it; shown to its
    # owner once, when registered, and nowhere else.
    secret = models.CharField(_("secret"), max_length=100, editable=False)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("webhook")
        verbose_name_plural = _("webhooks")
        ordering = ["-pk"]

    def __str__(self) -> str:
        return self.url

    def get_absolute_url(self) -> str:
        return reverse("webhook-detail", args=[self.pk])


class WebhookDeliveryQuerySet(models.QuerySet):
    def due(self, now: datetime) -> "WebhookDeliveryQuerySet":
        """Pending deliveries whose next attempt's time has come, the longest waiting first."""
        return self.filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now).order_by("next_attempt_at")

    # Transitions, each one conditional UPDATE; each returns the number of rows it changed.

    def claim(self, now: datetime, *, until: datetime) -> int:
        """Takes a due delivery for one attempt: none other starts before `until` (the attempt is over by then, or
        its worker died and the next may go)."""
        return self.due(now).update(next_attempt_at=until)

    def deliver(self, now: datetime, *, status_code: int) -> int:
        return self.filter(status=WebhookDelivery.Status.PENDING).update(
            status=WebhookDelivery.Status.DELIVERED,
            attempts=F("attempts") + 1,
            next_attempt_at=None,
            delivered_at=now,
            last_status_code=status_code,
            last_error="",
        )

    def fail_attempt(self, *, status_code: int | None, error: str, next_attempt_at: datetime | None) -> int:
        """An attempt that was not answered with a 2xx: tried again at `next_attempt_at`, or failed for good (None)."""
        return self.filter(status=WebhookDelivery.Status.PENDING).update(
            status=WebhookDelivery.Status.PENDING if next_attempt_at else WebhookDelivery.Status.FAILED,
            attempts=F("attempts") + 1,
            next_attempt_at=next_attempt_at,
            last_status_code=status_code,
            last_error=error[:ERROR_LENGTH],
        )


class WebhookDelivery(models.Model):
    """One event for one webhook: its body, and how its attempts went. Its id is the `webhook-id` of every attempt,
    so a receiver that got it twice can tell."""

    class Event(models.TextChoices):
        COMPUTATION_ENDED = "computation.ended", _("Computation ended")
        BATCH_ENDED = "batch.ended", _("Batch ended")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")

    webhook = models.ForeignKey(Webhook, verbose_name=_("webhook"), on_delete=models.CASCADE, related_name="deliveries")
    delivery_id = models.UUIDField(_("delivery id"), unique=True, default=uuid.uuid4, editable=False)
    event = models.CharField(_("event"), max_length=32, choices=Event)
    # The JSON body every attempt sends: {"type": event, "timestamp": when it happened, "data": {...}}.
    payload = models.JSONField(_("payload"))
    status = models.CharField(_("status"), max_length=16, choices=Status, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    # When the next attempt may start; none once delivered or failed.
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True, default=timezone.now)
    last_status_code = models.PositiveSmallIntegerField(_("last status code"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=ERROR_LENGTH, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)

    objects = WebhookDeliveryQuerySet.as_manager()

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-pk"]
        indexes = [
            # The due deliveries, which the workers look for every few seconds.
            models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due"),
            # Retention's prune, oldest first.
            models.Index(fields=["created_at"], name="webhook_delivery_created"),
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.delivery_id}"
