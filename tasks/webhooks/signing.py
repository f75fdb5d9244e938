"""Signatures of webhook deliveries, as Standard Webhooks defines them (https://www.standardwebhooks.com/).

A webhook's secret is "whsec_" and the base64 of SECRET_BYTES random bytes. Every attempt sends three headers:
`webhook-id` (the delivery's id, the same on every attempt), `webhook-timestamp` (this attempt's Unix time, in
seconds) and `webhook-signature`: "v1," and the base64 of HMAC-SHA256, keyed with the secret's bytes, of
"{id}.{timestamp}.{body}". A receiver checks it with `verify`, on the body exactly as it came (not parsed and
serialized again).
"""

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping

PREFIX = "whsec_"
SECRET_BYTES = 32  # the specification asks for 24 at least
VERSION = "v1"
# How far a signature's timestamp may be from the receiver's clock: an older attempt seen again is a replay.
TOLERANCE_SECONDS = 300


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def sign(secret: str, delivery_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header's value for this attempt."""
    key = base64.b64decode(secret.removeprefix(PREFIX))
    digest = hmac.new(key, f"{delivery_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return f"{VERSION},{base64.b64encode(digest).decode()}"


def headers(secret: str, delivery_id: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    """The three headers of one attempt, signed now (or at `timestamp`)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": delivery_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, delivery_id, timestamp, body),
    }


def verify(
    secret: str,
    received: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> bool:
    """Whether `body`, with the headers `received` (any case), was signed with `secret` no more than `tolerance`
    seconds from `now`. The signature header may hold several, space-separated (a secret being rotated): one that
    matches is enough. Compared in constant time."""
    named = {name.lower(): value for name, value in received.items()}
    delivery_id, timestamp = named.get("webhook-id", ""), named.get("webhook-timestamp", "")
    if not delivery_id or not timestamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance:
        return False
    expected = sign(secret, delivery_id, int(timestamp), body)
    offered = named.get("webhook-signature", "").split()
    return any(hmac.compare_digest(expected.encode(), signature.encode()) for signature in offered)
