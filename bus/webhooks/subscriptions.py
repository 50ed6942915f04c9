"""Webhook subscriptions, one JSON record each in the object store (shared by every node).

Records live under ``webhooks/subscriptions/<tenant>/<id>.json``; the secret is stored
encrypted (AES-256-GCM under a key derived from the tenant's KEK, ``bus.crypto``) and
is shown once, when the subscription is created.
"""

from __future__ import annotations

import base64
import os
import secrets
from datetime import datetime
from typing import Literal
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, Field

from bus.crypto import Keyring
from bus.objectstore import ObjectStore
from bus.webhooks.events import check_patterns
from schemas.envelope import utcnow
from schemas.ids import new_id
from schemas.messages import JournalEvent
from schemas.siren import check_siren

PREFIX = "webhooks/subscriptions/"
PURPOSE = "webhook-secret"
# the body a subscription receives: the bus's own, or what a Pastell client polls for
# (``bus.webhooks.pastell``: documents made through the Pastell door only)
Shape = Literal["native", "pastell"]
SHAPES: tuple[str, ...] = ("native", "pastell")


class Subscription(BaseModel):
    """Who wants which events (of which flows), where. ``secret`` is never part of its
    JSON dump."""

    id: str = Field(default_factory=lambda: "wh_" + new_id())
    tenant: str
    url: str
    event_types: list[str]
    flows: list[str] = Field(default_factory=list)  # only these flows' documents; [] = all
    shape: Shape = "native"
    secret: str = Field(default="", exclude=True, repr=False)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)

    def wants(self, event: JournalEvent) -> bool:
        """Whether ``event`` (of the subscription's tenant) concerns this subscription."""
        return (self.active and event.tenant == self.tenant and event.at >= self.created_at
                and (not self.flows or event.flow in self.flows))


class SubscriptionStore:
    """Add, list, find and remove subscriptions (what the CLI and the API call)."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.keyring: Keyring = store.keyring

    def add(self, tenant: str, url: str, event_types: list[str],
            flows: list[str] | None = None, shape: str = "native") -> Subscription:
        """A new active subscription with a fresh secret (returned here, only here);
        ``flows`` narrows it to those flows' documents, ``shape`` chooses its bodies."""
        sub = Subscription(tenant=_tenant(tenant), url=_url(url),
                           event_types=check_patterns([e.strip() for e in event_types
                                                       if e.strip()]),
                           flows=[f.strip() for f in flows or [] if f.strip()],
                           shape=_shape(shape), secret="whsec_" + secrets.token_urlsafe(32))
        record = sub.model_dump(mode="json") | {"secret_enc": self._seal(sub)}
        self.store.put_json(f"{PREFIX}{sub.tenant}/{sub.id}.json", record)
        return sub

    def list(self, tenant: str | None = None) -> list[Subscription]:
        prefix = PREFIX + (f"{tenant}/" if tenant else "")
        return [s for key in self.store.list_keys(prefix) if (s := self._load(key))]

    def get(self, sub_id: str) -> Subscription | None:
        key = self._key(sub_id)
        return self._load(key) if key else None

    def remove(self, sub_id: str) -> Subscription:
        """Delete a subscription (its pending deliveries are then dropped)."""
        key = self._key(sub_id)
        sub = self._load(key) if key else None
        if key is None or sub is None:
            raise KeyError(f"no webhook subscription {sub_id}")
        self.store.client.remove_object(self.store.bucket, key)
        return sub

    def _key(self, sub_id: str) -> str | None:
        return next((k for k in self.store.list_keys(PREFIX)
                     if k.endswith(f"/{sub_id}.json")), None)

    def _load(self, key: str) -> Subscription | None:
        record = self.store.get_json(key)
        if record is None:
            return None
        sub = Subscription.model_validate(record)
        sub.secret = self._open(sub, record["secret_enc"])
        return sub

    def _aead(self, tenant: str) -> AESGCM:
        return AESGCM(self.keyring.derived(tenant, PURPOSE))

    def _seal(self, sub: Subscription) -> str:
        nonce = os.urandom(12)
        sealed = self._aead(sub.tenant).encrypt(nonce, sub.secret.encode(), sub.id.encode())
        return base64.b64encode(nonce + sealed).decode()

    def _open(self, sub: Subscription, sealed_b64: str) -> str:
        raw = base64.b64decode(sealed_b64)
        return self._aead(sub.tenant).decrypt(raw[:12], raw[12:], sub.id.encode()).decode()


def _tenant(tenant: str) -> str:
    try:
        return check_siren(tenant)
    except ValueError as exc:
        raise ValueError(f"tenant: {exc}") from None


def _shape(shape: str) -> Shape:
    if shape not in SHAPES:
        raise ValueError(f"shape: {shape!r} is not one of {', '.join(SHAPES)}")
    return shape  # type: ignore[return-value]  (checked just above)


def _url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"url: {url!r} is not an http(s) URL")
    return url
