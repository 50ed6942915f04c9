"""Webhooks on the real embedded stack: a receiver down, then refusing, then back gets
every missed event exactly once per event id, signed; other tenants' receivers are not
held up; a delivery that runs out of attempts is dead-lettered and redelivered.

The session's bus runs with the default back-off (1, 5, 30, 120... s,
``DEMAT_WEBHOOK_BACKOFF_S``): a receiver failing for about 20 s gets its events at
the attempt 36 s after the first (the issue's "ten minutes down" scaled down).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path

import httpx
import pytest
from aiokafka import ConsumerRecord

from bus.broker import make_broker
from bus.client import DematClient
from bus.dev.launcher import Services, wait_until
from bus.index import Index
from bus.runtime import Runtime
from bus.services.webhooks import WebhookService
from bus.settings import Settings
from bus.webhooks.delivery import WebhookDelivery, delivered
from bus.webhooks.events import matches, webhook_types
from bus.webhooks.signing import WebhookVerificationError, verify
from bus.webhooks.subscriptions import SubscriptionStore
from schemas.messages import DocState, JournalEvent
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.stack
TENANT_A = "216900910"  # documents filed in a folder GED
TENANT_B = "214502494"  # documents filed in the WebDAV GED
PATTERNS = ["document.*", "step.done"]


async def _submit(settings: Settings, tmp_path: Path, tenant: str, names: list[str]
                  ) -> list[str]:
    async with DematClient(settings) as client:
        ids = []
        for name in names:
            path = tmp_path / f"{name}.txt"
            path.write_text(name)
            receipt = await client.submit("document", [path], tenant=tenant,
                                          metadata={"title": name})
            ids.append(receipt.doc_id)
        for doc_id in ids:
            assert (await client.wait(doc_id, 90)).state == DocState.COMPLETED
        return ids


def _expected(settings: Settings, doc_ids: list[str], patterns: list[str]) -> set[str]:
    """The webhook event ids the documents' journals make for ``patterns``."""
    index = Index(settings.database)
    assert wait_until(lambda: all(index.events(d) and index.events(d)[-1]["type"] == "completed"
                                  for d in doc_ids), 30)
    return {f"{e['event_id']}/{t}" for d in doc_ids for e in index.events(d)
            for t in webhook_types(JournalEvent.model_validate(
                e | {"doc_id": d, "tenant": None, "flow": None}))
            if matches(patterns, t)}


def _add(demat, tenant: str, url: str, events: str) -> dict:
    run = demat("webhooks", "add", "--tenant", tenant, "--url", url, "--events", events)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout[:run.stdout.rindex("}") + 1])


def test_a_receiver_back_after_an_outage_gets_every_missed_event_once_signed(
        settings: Settings, services: Services, demat, tmp_path: Path) -> None:
    down, healthy = Receiver(), Receiver()
    healthy.up()
    sub_a = _add(demat, TENANT_A, down.url, ",".join(PATTERNS))
    sub_b = _add(demat, TENANT_B, healthy.url, "document.completed")
    assert sub_a["secret"].startswith("whsec_")
    listed = demat("webhooks", "list", "--json")
    assert sub_a["id"] in listed.stdout and sub_a["secret"] not in listed.stdout
    time.sleep(settings.webhook_refresh_s + 1)  # the service's subscription cache
    t0 = time.monotonic()
    try:
        docs_a = asyncio.run(_submit(settings, tmp_path, TENANT_A, ["a1", "a2", "a3"]))
        docs_b = asyncio.run(_submit(settings, tmp_path, TENANT_B, ["b1"]))
        # tenant B's receiver is served while tenant A's is down
        expected_b = _expected(settings, docs_b, ["document.completed"])
        assert len(expected_b) == 1
        assert wait_until(lambda: set(healthy.ids()) == expected_b, 120)
        time.sleep(1)
        down.status = 503  # back, but refusing the second retries (6 s after the first)
        down.up()
        time.sleep(12)
        down.status = 200  # answers the third ones (36 s after the first)
        outage = time.monotonic() - t0
        expected_a = _expected(settings, docs_a, PATTERNS)
        assert len(expected_a) >= 3 * 4  # submitted, 2+ steps done, completed
        assert wait_until(lambda: set(down.ids()) >= expected_a, 120), (
            sorted(expected_a - set(down.ids())))
        time.sleep(5)  # nothing comes twice, even later
    finally:
        down.down()
        healthy.down()
    assert down.refused > 0 and outage >= 15
    assert sorted(down.ids()) == sorted(expected_a)  # once per event id, nothing else
    assert healthy.ids() == sorted(expected_b)
    for got in down.accepted:
        assert verify(sub_a["secret"], got.headers, got.body) == got.headers["Webhook-Id"]
        body = json.loads(got.body)
        assert body["id"] == got.headers["Webhook-Id"] and body["tenant"] == TENANT_A
        assert body["document"] in docs_a
    sample = down.accepted[0]
    with pytest.raises(WebhookVerificationError, match="no valid v1 signature"):
        verify(sub_a["secret"], sample.headers, sample.body.replace(b"}", b' ,"x":1}', 1))
    with pytest.raises(WebhookVerificationError, match="outside the 300 s window"):
        verify(sub_a["secret"], sample.headers, sample.body,
               now=int(sample.headers["Webhook-Timestamp"]) + 301)
    acks = json.loads(demat("webhooks", "deliveries", sub_a["id"]).stdout)
    assert sorted(a["event_id"] for a in acks) == sorted(expected_a)
    assert any(a["attempts"] > 1 for a in acks)
    for sub in (sub_a, sub_b):
        assert demat("webhooks", "remove", sub["id"]).returncode == 0


def test_a_delivery_out_of_attempts_is_dead_lettered_then_redelivered_once(
        settings: Settings, services: Services, demat) -> None:
    receiver = Receiver()  # not listening yet
    store = SubscriptionStore(Runtime(settings).store)
    sub = store.add(TENANT_A, receiver.url, ["document.completed"])
    delivery = WebhookDelivery(
        subscription_id=sub.id, tenant=TENANT_A, event_id="doc-x:9/document.completed",
        event_type="document.completed", document="doc-x", attempts=2,
        body=json.dumps({"id": "doc-x:9/document.completed", "type": "document.completed"}))
    # one last attempt by a service allowed three: it fails and dead-letters the delivery
    asyncio.run(_last_attempt(settings, delivery))
    index = Index(settings.database)
    assert wait_until(lambda: index.dead_letters(flow="webhook", step=sub.id), 30)
    letter = index.dead_letters(flow="webhook", step=sub.id)[0]
    assert letter["tenant"] == TENANT_A and letter["attempts"] == 3
    assert "ConnectError" in letter["message"] and receiver.url in letter["message"]
    raw = json.loads(base64.b64decode(index.dead_letter(letter["id"])["raw"]))
    assert raw["attempts"] == 0 and raw["event_id"] == delivery.event_id
    receiver.up()
    try:
        run = demat("webhooks", "redeliver", "--subscription", sub.id)
        assert run.returncode == 0, run.stderr
        assert wait_until(lambda: receiver.ids() == [delivery.event_id], 120)
        assert wait_until(lambda: index.dead_letter(letter["id"])["status"] == "replayed", 120)
        # a second replay of the same delivery is not sent again (delivered marker)
        asyncio.run(_republish(settings, delivery))
        time.sleep(3)
    finally:
        receiver.down()
    assert receiver.ids() == [delivery.event_id]
    assert verify(sub.secret, receiver.accepted[0].headers, receiver.accepted[0].body)
    assert [d["event_id"] for d in delivered(store.store, sub.id)] == [delivery.event_id]
    store.remove(sub.id)


async def _last_attempt(settings: Settings, delivery: WebhookDelivery) -> None:
    runtime = Runtime(settings.model_copy(update={"webhook_max_attempts": 3,
                                                  "webhook_refresh_s": 0}))
    broker = make_broker(runtime.settings)
    await broker.connect()
    service = WebhookService(broker, runtime)
    try:
        async with httpx.AsyncClient(timeout=5) as service.client:
            await service.deliver(_record(runtime.topics.webhooks, delivery))
    finally:
        await broker.stop()


async def _republish(settings: Settings, delivery: WebhookDelivery) -> None:
    broker = make_broker(settings)
    await broker.connect()
    try:
        await broker.publish(delivery.model_dump_json().encode(),
                             Runtime(settings).topics.webhooks, key=delivery.key)
    finally:
        await broker.stop()


def _record(topic: str, delivery: WebhookDelivery) -> ConsumerRecord:
    return ConsumerRecord(topic=topic, partition=0, offset=-1, timestamp=0,
                          timestamp_type=0, key=delivery.key,
                          value=delivery.model_dump_json().encode(), checksum=None,
                          serialized_key_size=0, serialized_value_size=0, headers=())
