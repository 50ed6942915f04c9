"""Service group ``webhooks``: pushes journal events to the tenants' subscriptions.

One consumer (group ``<prefix>.webhooks``, ``bus.consumer``) reads two topics:

- the journal: each event matching an active subscription of its tenant (made since the
  subscription was) becomes one
  ``WebhookDelivery`` per (subscription, webhook event) on ``<prefix>.webhooks``, its
  body in the subscription's shape (the bus's own, or Pastell's: ``bus.webhooks.pastell``);
- ``<prefix>.webhooks``: each delivery is attempted once; a failure goes back to it
  through a delay topic after the configured back-off (``bus.delays``), so a failing
  receiver never holds up anyone else's deliveries; after the last attempt or the
  maximum age it becomes a dead letter (flow ``webhook``, step = the subscription id,
  document ``webhook:<subscription>/<event id>``)
  that ``demat dlq replay`` / ``demat webhooks redeliver`` sends again.

At most ``webhook_slots_per_subscription`` attempts are in flight to one subscription:
a delivery to a subscription whose slots are all taken (a hung receiver) waits on a
delay topic without counting an attempt, so it holds none of the consumer's slots that
the other subscriptions' deliveries need.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections import Counter
from typing import Any

import httpx
from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker
from pydantic import ValidationError

from bus.broker import EVENT_HEADER, TENANT_HEADER, encode, journal_lines
from bus.consumer import KeyOrderedConsumer
from bus.deadletter import (
    decode_or_dead_letter,
    publish_dead_letter,
    record_letter,
    record_source,
)
from bus.delays import delay_headers, tier_for
from bus.pastell.store import PastellStore
from bus.runtime import Runtime
from bus.webhooks.delivery import RetryPolicy, WebhookDelivery, already_delivered, attempt
from bus.webhooks.events import MAKING_TYPES, event_id, matches, payload, webhook_types
from bus.webhooks.pastell import pastell_body
from bus.webhooks.subscriptions import Subscription, SubscriptionStore
from schemas.envelope import utcnow
from schemas.messages import DeadLetter, ErrorInfo, JournalEvent, MessageSource

log = logging.getLogger("demat.webhooks")


class WebhookService:
    """Fans journal events out to deliveries and attempts them (module docstring)."""

    def __init__(self, broker: KafkaBroker, runtime: Runtime) -> None:
        self.broker = broker
        self.runtime = runtime
        settings = runtime.settings
        self.topics = runtime.topics
        self.policy = RetryPolicy(settings.webhook_backoff, settings.webhook_max_attempts,
                                  settings.webhook_max_age_s)
        self.consumer = KeyOrderedConsumer(
            settings.bootstrap, [self.topics.journal, self.topics.webhooks],
            group_id=f"{self.topics.prefix}.webhooks", handle=self.handle,
            max_in_flight=settings.step_concurrency, client_id="demat-webhooks",
            fetch_wait_ms=settings.fetch_wait_ms, security=settings.kafka_security,
            on_poison=self.poison)
        self.client: httpx.AsyncClient | None = None
        self._subs: dict[str, Subscription] = {}
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()
        self._in_flight: Counter[str] = Counter()  # attempts under way, by subscription
        self._pastell: PastellStore | None = None

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=self.runtime.settings.webhook_timeout_s,
                                     follow_redirects=False) as self.client:
            await self.consumer.run()

    def stop(self) -> None:
        self.consumer.stop()

    async def handle(self, record: ConsumerRecord) -> None:
        if record.topic == self.topics.journal:
            await self.fan_out(record)
        else:
            await self.deliver(record)

    async def poison(self, record: ConsumerRecord, exc: Exception) -> None:
        """A journal event or delivery whose handling raised: dead-lettered (flow
        ``webhook``, the exception named), the consumer goes on."""
        letter = record_letter(record, exc).model_copy(update={"flow": "webhook"})
        await publish_dead_letter(self.broker, self.topics, letter)

    async def subscriptions(self) -> dict[str, Subscription]:
        """Every subscription by id, re-read from the store at most every refresh period."""
        async with self._lock:
            if time.monotonic() - self._loaded_at >= self.runtime.settings.webhook_refresh_s:
                store = SubscriptionStore(self.runtime.store)
                self._subs = {s.id: s for s in await asyncio.to_thread(store.list)}
                self._loaded_at = time.monotonic()
            return self._subs

    async def fan_out(self, record: ConsumerRecord) -> None:
        """The deliveries of a journal record's events, to every subscription wanting each."""
        if await self._makes_nothing(record):
            return
        sends, subs = [], list((await self.subscriptions()).values())
        for line in journal_lines(record.value):
            try:
                event = JournalEvent.model_validate_json(line)
            except ValidationError:
                log.error("undecodable journal event skipped at %s[%d]@%d", record.topic,
                          record.partition, record.offset)
                continue
            sends += await self._deliveries(event, subs)
        await asyncio.gather(*sends)

    async def _deliveries(self, event: JournalEvent, subscriptions: list[Subscription]
                          ) -> list[Any]:
        """Publish the deliveries one event makes to ``subscriptions`` (a body per shape
        and webhook event)."""
        types = webhook_types(event) if event.tenant else []
        if not types:
            return []
        subs = [s for s in subscriptions if s.wants(event)]
        bodies: dict[tuple[str, str], bytes | None] = {}
        sends = []
        for t in types:
            for sub in (s for s in subs if matches(s.event_types, t)):
                if (sub.shape, t) not in bodies:
                    bodies[sub.shape, t] = await self.body(sub.shape, event, t)
                if (body := bodies[sub.shape, t]) is not None:
                    d = _delivery(sub, event, t, body)
                    sends.append(await self.broker.publish(encode(d), self.topics.webhooks,
                                                           key=d.key, no_confirm=True))
        return sends

    async def body(self, shape: str, event: JournalEvent, event_type: str) -> bytes | None:
        """The body of ``event`` as ``event_type`` in ``shape`` (``None``: none to send)."""
        if shape != "pastell":
            return payload(event, event_type)
        if self._pastell is None:
            self._pastell = PastellStore(self.runtime.database, self.runtime.store.keyring)
        return await asyncio.to_thread(pastell_body, self._pastell, event, event_type)

    async def _makes_nothing(self, record: ConsumerRecord) -> bool:
        """Whether a journal record's headers show, without decoding it, that it makes no
        delivery: its event type makes no webhook event, or no active subscription is
        of its tenant (records without those headers are decoded)."""
        headers = {k: v.decode(errors="replace") for k, v in record.headers or ()}
        event_types, tenant = headers.get(EVENT_HEADER), headers.get(TENANT_HEADER)
        if event_types is not None and not MAKING_TYPES.intersection(event_types.split(",")):
            return True
        if tenant is None:
            return False
        return not any(s.active and s.tenant == tenant
                       for s in (await self.subscriptions()).values())

    async def deliver(self, record: ConsumerRecord) -> None:
        source = record_source(record)
        delivery = await decode_or_dead_letter(self.broker, self.topics, record.value, source,
                                               WebhookDelivery.model_validate_json)
        if delivery is None:
            return
        sub = (await self.subscriptions()).get(delivery.subscription_id)
        if sub is None or not sub.active:
            log.info("delivery %s dropped: subscription %s is gone or inactive",
                     delivery.event_id, delivery.subscription_id)
            return
        store = self.runtime.store
        if await asyncio.to_thread(already_delivered, store, delivery):
            return
        assert self.client is not None
        if self._in_flight[sub.id] >= self.runtime.settings.webhook_slots_per_subscription:
            await self._later(delivery, self.runtime.settings.webhook_busy_delay_s)
            return
        self._in_flight[sub.id] += 1
        try:
            error = await attempt(self.client, store, sub, delivery)
        finally:
            self._in_flight[sub.id] -= 1
        if error is None:
            return
        delivery.last_error = error
        if self.policy.gives_up(delivery, utcnow()):
            await self._dead_letter(sub, delivery, source)
        else:
            await self._retry(delivery)

    async def _retry(self, delivery: WebhookDelivery) -> None:
        delay = self.policy.delay(delivery.attempts)
        log.info("delivery %s to %s failed (attempt %d: %s); again in %g s",
                 delivery.event_id, delivery.subscription_id, delivery.attempts,
                 delivery.last_error, delay)
        await self._later(delivery, delay)

    async def _later(self, delivery: WebhookDelivery, delay: float) -> None:
        """Send the delivery back to the deliveries topic in ``delay`` seconds."""
        await self.broker.publish(encode(delivery), self.topics.delay(tier_for(delay)),
                                  key=delivery.key,
                                  headers=delay_headers(self.topics.webhooks, delay))

    async def _dead_letter(self, sub: Subscription, delivery: WebhookDelivery,
                           source: MessageSource) -> None:
        fresh = delivery.model_copy(update={"attempts": 0, "first_attempt_at": None})
        letter = DeadLetter(  # its own document id: a replay is not the document's
            doc_id=f"webhook:{sub.id}/{delivery.event_id}", tenant=delivery.tenant,
            flow="webhook", step=sub.id, source=source,
            attempts=delivery.attempts, first_failure_at=delivery.first_attempt_at,
            raw=base64.b64encode(encode(fresh)).decode(),
            error=ErrorInfo(error_class="WebhookDeliveryFailed", retryable=True,
                            message=f"{delivery.event_type} {delivery.event_id} of document "
                                    f"{delivery.document} to {sub.url}: {delivery.last_error}"))
        log.warning("delivery %s to %s dead-lettered after %d attempts", delivery.event_id,
                    sub.id, delivery.attempts)
        await publish_dead_letter(self.broker, self.topics, letter)


def _delivery(sub: Subscription, event: JournalEvent, event_type: str, body: bytes
              ) -> WebhookDelivery:
    return WebhookDelivery(subscription_id=sub.id, tenant=sub.tenant,
                           event_id=event_id(event, event_type), event_type=event_type,
                           document=event.doc_id, body=body.decode())
