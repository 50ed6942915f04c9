"""One delivery of one event to one subscription: attempt, dedup marker, retry decision.

A delivery travels on the topic ``<prefix>.webhooks`` (keyed by subscription and
document); a failed attempt goes back to it through a delay topic after a back-off,
until it succeeds (2xx), runs out of attempts or age and becomes a dead letter.
A 2xx answer is recorded under ``webhooks/delivered/<subscription>/<event id>.json``:
a delivery seen again (Kafka redelivery, replay) is then not sent again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import httpx
from pydantic import BaseModel

from bus.objectstore import ObjectStore
from bus.webhooks.signing import sign
from bus.webhooks.subscriptions import Subscription
from schemas.envelope import utcnow

DELIVERED = "webhooks/delivered/"
USER_AGENT = "demat-bus-webhooks/1"


class WebhookDelivery(BaseModel):
    """A pending delivery (no secret: the attempt reads it from the subscription)."""

    subscription_id: str
    tenant: str
    event_id: str
    event_type: str
    document: str
    body: str  # the JSON payload, byte-identical on every attempt
    attempts: int = 0
    first_attempt_at: datetime | None = None
    last_error: str | None = None

    @property
    def key(self) -> bytes:
        return f"{self.subscription_id}/{self.document}".encode()


@dataclass(frozen=True)
class RetryPolicy:
    """Back-off between attempts, and when to give up."""

    backoff_s: tuple[float, ...]
    max_attempts: int
    max_age_s: float

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt."""
        return self.backoff_s[min(attempts, len(self.backoff_s)) - 1]

    def gives_up(self, delivery: WebhookDelivery, now: datetime) -> bool:
        started = delivery.first_attempt_at or now
        return (delivery.attempts >= self.max_attempts
                or (now - started).total_seconds() >= self.max_age_s)


def marker_key(subscription_id: str, event_id: str) -> str:
    return f"{DELIVERED}{subscription_id}/{event_id}.json"


def already_delivered(store: ObjectStore, delivery: WebhookDelivery) -> bool:
    return store.get_record(marker_key(delivery.subscription_id, delivery.event_id)) is not None


def delivered(store: ObjectStore, subscription_id: str) -> list[dict]:
    """The deliveries a subscription's receiver acknowledged (markers), oldest key first."""
    return [r for k in store.list_keys(f"{DELIVERED}{subscription_id}/")
            if (r := store.get_json(k)) is not None]


async def attempt(client: httpx.AsyncClient, store: ObjectStore, sub: Subscription,
                  delivery: WebhookDelivery) -> str | None:
    """POST the delivery once; None when the receiver answered 2xx (marker written),
    else why it failed. Updates ``attempts`` and ``first_attempt_at``."""
    now = utcnow()
    delivery.first_attempt_at = delivery.first_attempt_at or now
    delivery.attempts += 1
    body = delivery.body.encode()
    headers = sign(sub.secret, delivery.event_id, body) | {
        "Content-Type": "application/json", "User-Agent": USER_AGENT}
    try:
        resp = await client.post(sub.url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"[:500]
    if not resp.is_success:
        return f"HTTP {resp.status_code}: {resp.text[:200]}"
    store.put_json(marker_key(sub.id, delivery.event_id), {
        "subscription_id": sub.id, "event_id": delivery.event_id,
        "event_type": delivery.event_type, "document": delivery.document,
        "status": resp.status_code, "attempts": delivery.attempts,
        "first_attempt_at": delivery.first_attempt_at.isoformat(),
        "delivered_at": utcnow().isoformat()})
    return None
