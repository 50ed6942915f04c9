"""Webhook signatures: HMAC-SHA256 over ``{id}.{timestamp}.{body}``.

Every delivery carries three headers:

- ``Webhook-Id``: the event id (the same on every retry: receivers dedup on it);
- ``Webhook-Timestamp``: the attempt's time, integer seconds since the epoch;
- ``Webhook-Signature``: ``v1=<hex HMAC-SHA256(secret, f"{id}.{timestamp}.{body}")>``
  (several space-separated values may come while a secret is rotated).

A receiver recomputes the HMAC over the raw body bytes it received and refuses the
delivery when no signature matches (tampered) or when the timestamp is more than
``tolerance_s`` away from its clock (a replay of an old delivery).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

ID, TIMESTAMP, SIGNATURE = "Webhook-Id", "Webhook-Timestamp", "Webhook-Signature"
SCHEME = "v1"


class WebhookVerificationError(ValueError):
    """A delivery whose signature or timestamp does not hold."""


def signature(secret: str, event_id: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``{id}.{timestamp}.{body}`` under ``secret``."""
    signed = f"{event_id}.{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(secret: str, event_id: str, body: bytes, timestamp: int | None = None
         ) -> dict[str, str]:
    """The headers of one delivery attempt of ``body``."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {ID: event_id, TIMESTAMP: str(ts),
            SIGNATURE: f"{SCHEME}={signature(secret, event_id, ts, body)}"}


def verify(secret: str, headers: Mapping[str, str], body: bytes, tolerance_s: int = 300,
           now: float | None = None) -> str:
    """Check a received delivery; return its event id, or raise
    ``WebhookVerificationError`` naming what is wrong."""
    lower = {k.lower(): v for k, v in headers.items()}
    event_id, raw_ts, sigs = (lower.get(h.lower()) for h in (ID, TIMESTAMP, SIGNATURE))
    if not event_id or not raw_ts or not sigs:
        missing = [h for h in (ID, TIMESTAMP, SIGNATURE) if not lower.get(h.lower())]
        raise WebhookVerificationError(f"missing header(s) {', '.join(missing)}")
    try:
        ts = int(raw_ts)
    except ValueError:
        raise WebhookVerificationError(f"{TIMESTAMP} {raw_ts!r} is not an integer") from None
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance_s:
        raise WebhookVerificationError(
            f"{TIMESTAMP} {ts} is {current - ts:+.0f} s from now, outside the "
            f"{tolerance_s} s window (replayed or late delivery)")
    expected = signature(secret, event_id, ts, body)
    offered = [v.split("=", 1)[1] for v in sigs.split() if v.startswith(f"{SCHEME}=")]
    if not any(hmac.compare_digest(expected, o) for o in offered):
        raise WebhookVerificationError(f"no valid {SCHEME} signature in {SIGNATURE}")
    return event_id
