"""What a delivery sends: its JSON body and headers, the body signed with the webhook's secret.

``X-Teamocr-Signature: sha256=<hex HMAC-SHA256 of the body, keyed with the secret>``. The body
holds the ``timestamp`` (epoch seconds) it was made at, also sent as ``X-Teamocr-Timestamp``: the
signature covers it, so a receiver refuses a body older than a few minutes (a replay), and
``X-Teamocr-Delivery`` (the delivery id, the same on each attempt) lets it drop a repeat.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from daemon.webhooks.queue import Delivery

SIGNATURE = "X-Teamocr-Signature"
TIMESTAMP = "X-Teamocr-Timestamp"
DELIVERY = "X-Teamocr-Delivery"
EVENT = "X-Teamocr-Event"
USER_AGENT = "teamocr-webhooks/1"


def signature(secret: str, body: bytes) -> str:
    """The signature header's value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """Whether ``header`` is the signature of ``body`` (compared in constant time)."""
    return hmac.compare_digest(signature(secret, body), header or "")


def body_of(delivery: Delivery, timestamp: int) -> bytes:
    """The JSON body of one attempt: the delivery and event ids, the event, when, the result item."""
    event = delivery.event
    payload: dict[str, Any] = {
        "id": delivery.id,
        "event": event["type"],
        "event_id": event["id"],
        "timestamp": timestamp,
        "occurred_at": event["at"],
        "item": event["item"],
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def headers_of(delivery: Delivery, secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT: delivery.event["type"],
        DELIVERY: delivery.id,
        TIMESTAMP: str(timestamp),
        SIGNATURE: signature(secret, body),
    }
