"""Attempts of deliveries, on the workers only: a web request never calls out.

A delivery's first attempt is sent to a worker as soon as it is created (`send`); Celery beat has the rest made
(`deliver_due`, every 15 seconds), each after a longer wait (BACKOFF) while the delivery is less than a day
old (WINDOW), after which it has failed. An attempt first claims its delivery (WebhookDeliveryQuerySet.claim), so two
workers never make the same one; one whose worker died is made again once the claim's lease has passed.
"""

import json
import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnreachable

from .. import broker
from ..models import WebhookDelivery
from . import posting, signing

logger = logging.getLogger(__name__)

# The waits between a delivery's attempts: the last repeats until WINDOW is over.
BACKOFF = tuple(timedelta(seconds=seconds) for seconds in (30, 120, 600, 1800, 3600, 7200, 14_400, 28_800))
WINDOW = timedelta(days=1)
# How long an attempt holds its delivery: longer than an attempt can take (posting's deadline, and the resolver's).
LEASE = timedelta(seconds=60)
# At most this many due deliveries a run of deliver_due attempts, for at most about DUE_SECONDS; the next run goes on.
DUE_BATCH, DUE_SECONDS = 50, 60
# Deliveries per message of first attempts: an attempt may take posting.DEADLINE_SECONDS.
SEND_CHUNK = 10
USER_AGENT = "computation-dashboard-webhooks/1"


def send(delivery_ids: Sequence[str]) -> None:
    """Has the first attempts of these deliveries made by workers now; with the broker down, deliver_due makes them
    once it is back (they are due)."""
    chunks = [list(delivery_ids[start : start + SEND_CHUNK]) for start in range(0, len(delivery_ids), SEND_CHUNK)]
    try:
        with broker.producer() as producer:
            for chunk in chunks:
                broker.send(broker.DELIVER_WEBHOOKS, chunk, via=producer)
    except BrokerUnreachable:
        logger.warning("broker unreachable: %d webhook deliveries wait for their due time", len(delivery_ids))


def deliver_due(now: datetime | None = None) -> int:
    """Makes the attempts that are due, the longest waiting first; how many it made."""
    started = time.monotonic()
    due = WebhookDelivery.objects.due(now or timezone.now()).values_list("delivery_id", flat=True)[:DUE_BATCH]
    made = 0
    for delivery_id in due:
        if time.monotonic() - started > DUE_SECONDS:
            break
        made += attempt(str(delivery_id))
    return made


def attempt(delivery_id: str) -> bool:
    """One attempt of the delivery, if it is due and no other attempt holds it; whether one was made."""
    now = timezone.now()
    rows = WebhookDelivery.objects.filter(delivery_id=delivery_id)
    if not rows.claim(now, until=now + LEASE):
        return False
    delivery = rows.select_related("webhook").get()
    body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **signing.headers(delivery.webhook.secret, delivery_id, body),
    }
    record(delivery, posting.post(delivery.webhook.url, body, headers))
    return True


def record(delivery: WebhookDelivery, answer: posting.Answer) -> None:
    """An attempt's answer: a 2xx delivers, anything else is tried again later or, its day over, failed."""
    now, rows = timezone.now(), WebhookDelivery.objects.filter(pk=delivery.pk)
    if answer.delivered:
        rows.deliver(now, status_code=answer.status_code)
        return
    rows.fail_attempt(status_code=answer.status_code, error=answer.error, next_attempt_at=next_attempt(delivery, now))
    why = answer.error or f"HTTP {answer.status_code}"
    logger.info("webhook delivery %s attempt %d failed: %s", delivery.delivery_id, delivery.attempts + 1, why)


def next_attempt(delivery: WebhookDelivery, now: datetime) -> datetime | None:
    """When to try again after the delivery's attempt that just failed (its attempts count the earlier ones): after
    the wait for that many, but not past the end of its day, when it is failed for good (None)."""
    deadline = delivery.created_at + WINDOW
    if now >= deadline:
        return None
    return min(now + BACKOFF[min(delivery.attempts, len(BACKOFF) - 1)], deadline)
