"""A hung webhook receiver holds at most its subscription's slots: further deliveries to
it wait on a delay topic (no attempt counted) and another subscription is served
meanwhile. Handler unit test: the broker only records what would be published; the
receivers are real local HTTP servers, one of which never answers."""

from __future__ import annotations

import asyncio
import json
import time
from types import SimpleNamespace
from typing import Any

import httpx
from aiokafka import ConsumerRecord

from bus.services.webhooks import WebhookService
from bus.settings import Settings
from bus.topics import Topics
from bus.webhooks.delivery import WebhookDelivery, marker_key
from bus.webhooks.subscriptions import Subscription
from tests.webhooks.receiver import Receiver

TENANT = "216900910"


class Records:
    """The record calls deliveries make on the object store, in memory."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def get_record(self, key: str) -> bytes | None:
        return self.data.get(key)

    def put_json(self, key: str, value: Any) -> None:
        self.data[key] = json.dumps(value).encode()


class Published:
    def __init__(self) -> None:
        self.sent: list[tuple[str, WebhookDelivery]] = []

    async def publish(self, body: bytes, topic: str, **_: Any) -> None:
        self.sent.append((topic, WebhookDelivery.model_validate_json(body)))


async def _hung_receiver() -> tuple[asyncio.Server, str]:
    """A receiver that reads the request and never answers."""
    async def hold(reader: asyncio.StreamReader, _: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        await asyncio.sleep(3600)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/hook"


def _record(topics: Topics, delivery: WebhookDelivery) -> ConsumerRecord:
    return ConsumerRecord(topic=topics.webhooks, partition=0, offset=1, timestamp=0,
                          timestamp_type=0, key=delivery.key,
                          value=delivery.model_dump_json().encode(), checksum=None,
                          serialized_key_size=0, serialized_value_size=0, headers=())


def _delivery(sub: Subscription, n: int) -> WebhookDelivery:
    return WebhookDelivery(subscription_id=sub.id, tenant=TENANT, event_id=f"ev{n}",
                           event_type="document.completed", document=f"doc{n}",
                           body=json.dumps({"n": n}))


async def _scenario(healthy_url: str) -> tuple[Published, Records, list[WebhookDelivery]]:
    server, hung_url = await _hung_receiver()
    settings = Settings(webhook_slots_per_subscription=2, webhook_timeout_s=60,
                        kafka_bootstrap="127.0.0.1:1")  # never connected: a unit test
    topics, store, broker = Topics("slots"), Records(), Published()
    service = WebhookService(broker, SimpleNamespace(settings=settings, topics=topics,
                                                     store=store))
    hung = Subscription(tenant=TENANT, url=hung_url, event_types=["*"], secret="s1")
    good = Subscription(tenant=TENANT, url=healthy_url, event_types=["*"], secret="s2")
    service._subs, service._loaded_at = {hung.id: hung, good.id: good}, time.monotonic() + 1e9
    stuck = [_delivery(hung, n) for n in range(3)]
    async with httpx.AsyncClient(timeout=60) as service.client:
        holding = [asyncio.create_task(service.deliver(_record(topics, d))) for d in stuck[:2]]
        await asyncio.sleep(0.5)  # both attempts are under way, and hang
        await asyncio.wait_for(service.deliver(_record(topics, stuck[2])), 5)
        await asyncio.wait_for(service.deliver(_record(topics, _delivery(good, 9))), 5)
        assert not any(t.done() for t in holding)
        for task in holding:
            task.cancel()
    server.close()
    return broker, store, [_delivery(good, 9)]


def test_a_hung_receiver_holds_only_its_own_slots() -> None:
    receiver = Receiver()
    receiver.up()
    try:
        broker, store, (good,) = asyncio.run(_scenario(receiver.url))
    finally:
        receiver.down()
    assert [json.loads(r.body) for r in receiver.accepted] == [{"n": 9}]
    assert marker_key(good.subscription_id, good.event_id) in store.data
    (topic, later), = broker.sent  # the third delivery to the hung receiver waits
    assert topic == Topics("slots").delay(1) and later.event_id == "ev2"
    assert later.attempts == 0 and later.first_attempt_at is None
