"""Webhooks on the real embedded stack: a receiver down for ten minutes, then refusing,
then back gets every missed event exactly once per event id, signed; another tenant's
receiver is served meanwhile; a delivery that runs out of attempts is dead-lettered and
redelivered.

The outage spans the session (``OUTAGE_S``, 600 s; ``DEMAT_TEST_WEBHOOK_OUTAGE_S``
shortens it for a local run): its first test is moved to the session's start and its
last to the end (``tests/conftest.py``), so the rest of the suite runs during it. The
session's bus retries webhooks after 1, 5, 30 s, then every 60 s
(``DEMAT_WEBHOOK_BACKOFF_S``, conftest), so a receiver back after the outage has every
event within about a minute. The subscriptions are narrowed to the test family's flow
(``cemetery-concession``) so that the other tests' documents do not reach them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import date
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
TENANT_A = "216900910"
TENANT_B = "214502494"
PATTERNS = ["document.*", "step.done"]
FLOW = "cemetery-concession"  # the test family's flow: no other test sends it to B
OUTAGE_S = float(os.environ.get("DEMAT_TEST_WEBHOOK_OUTAGE_S", "600"))


@dataclass
class Outage:
    """Tenant A's receiver: down for the first half of the outage, answering 503 for the
    second half, then 200. Tenant B's receiver is up all along."""

    down: Receiver = field(default_factory=Receiver)
    healthy: Receiver = field(default_factory=Receiver)
    subs: dict[str, dict] = field(default_factory=dict)
    docs: dict[str, list[str]] = field(default_factory=dict)
    started: float = 0.0
    refusing_at: float = 0.0
    back_at: float = 0.0

    def begin(self, settings: Settings, demat, tmp_path: Path) -> None:
        self.healthy.up()
        self.subs["a"] = _add(demat, TENANT_A, self.down.url, ",".join(PATTERNS))
        self.subs["b"] = _add(demat, TENANT_B, self.healthy.url, "document.completed")
        time.sleep(settings.webhook_refresh_s + 1)  # the service's subscription cache
        self.started = time.monotonic()
        threading.Timer(OUTAGE_S / 2, self._refuse).start()
        threading.Timer(OUTAGE_S, self._accept).start()
        self.docs["b"] = asyncio.run(_submit(settings, tmp_path, TENANT_B, 1))
        self.docs["a"] = asyncio.run(_submit(settings, tmp_path, TENANT_A, 3))

    def _refuse(self) -> None:
        self.down.status = 503
        self.down.up()
        self.refusing_at = time.monotonic()

    def _accept(self) -> None:
        self.down.status = 200
        self.back_at = time.monotonic()

    def end(self) -> None:
        self.down.down()
        self.healthy.down()


@pytest.fixture(scope="session")
def outage() -> Outage:
    return Outage()


async def _submit(settings: Settings, tmp_path: Path, tenant: str, count: int) -> list[str]:
    """``count`` concessions of ``tenant``, waited for until completed."""
    async with DematClient(settings) as client:
        ids = []
        base = secrets.randbelow(90_000)
        for i in range(count):
            path = tmp_path / f"concession-{tenant}-{i}.pdf"
            path.write_bytes(b"%PDF-1.4\n% concession\n%%EOF\n")
            number = f"WH-{date.today().year}-{base + i}"
            receipt = await client.submit(FLOW, [path], tenant=tenant, metadata={
                "title": f"Concession {number}", "concession_number": number,
                "cemetery": "Cimetière de l'Est", "holder": "Paul Durand",
                "duration_years": 15, "granted_on": date.today().isoformat()},
                key=f"webhooks-{number}")
            ids.append(receipt.doc_id)
        for doc_id in ids:
            state = await client.wait(doc_id, 120)
            assert state.state == DocState.COMPLETED, state.error
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
    run = demat("webhooks", "add", "--tenant", tenant, "--url", url, "--events", events,
                "--flows", FLOW)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout[:run.stdout.rindex("}") + 1])


@pytest.mark.session_first
def test_an_outage_begins_and_another_tenant_is_served_meanwhile(
        outage: Outage, settings: Settings, services: Services, demat, tmp_path: Path) -> None:
    outage.begin(settings, demat, tmp_path)
    listed = demat("webhooks", "list", "--json")
    assert outage.subs["a"]["id"] in listed.stdout
    assert outage.subs["a"]["secret"] not in listed.stdout
    expected_b = _expected(settings, outage.docs["b"], ["document.completed"])
    assert len(expected_b) == 1
    assert wait_until(lambda: set(outage.healthy.ids()) >= expected_b, 120)
    # B was served while A's receiver was down (or refusing): nothing reached A yet
    assert outage.down.ids() == [] and outage.back_at == 0
    assert outage.down.refused > 0 or outage.refusing_at == 0


@pytest.mark.session_last
@pytest.mark.timeout(OUTAGE_S + 900)
def test_after_the_outage_every_missed_event_comes_once_signed(
        outage: Outage, settings: Settings, services: Services, demat, tmp_path: Path) -> None:
    if not outage.started:  # run on its own: the outage starts now
        outage.begin(settings, demat, tmp_path)
    try:
        time.sleep(max(0.0, outage.started + OUTAGE_S - time.monotonic()))
        assert wait_until(lambda: outage.back_at > 0, 10)
        expected_a = _expected(settings, outage.docs["a"], PATTERNS)
        assert len(expected_a) >= 3 * 4  # submitted, 2+ steps done, completed
        assert wait_until(lambda: set(outage.down.ids()) >= expected_a, 240), (
            sorted(expected_a - set(outage.down.ids())))
        time.sleep(5)  # nothing comes twice, even later
    finally:
        outage.end()
    down, sub_a = outage.down, outage.subs["a"]
    assert down.refused > 0 and outage.back_at - outage.started >= OUTAGE_S
    ids = down.ids()
    assert len(ids) == len(set(ids)), "an event id was delivered twice"
    for got in down.accepted:  # only tenant A's concessions, each signed
        assert verify(sub_a["secret"], got.headers, got.body, now=int(got.at)) == \
            got.headers["Webhook-Id"]
        body = json.loads(got.body)
        assert body["id"] == got.headers["Webhook-Id"] and body["tenant"] == TENANT_A
        assert body["data"]["flow"] == FLOW
        assert body["occurred_at"] and body["document"]
    _tampered_and_replayed_are_refused(sub_a["secret"], down.accepted[0])
    acks = json.loads(demat("webhooks", "deliveries", sub_a["id"]).stdout)
    assert sorted(a["event_id"] for a in acks) == sorted(ids)
    assert any(a["attempts"] > 3 for a in acks)
    for sub in outage.subs.values():
        assert demat("webhooks", "remove", sub["id"]).returncode == 0


def _tampered_and_replayed_are_refused(secret: str, sample) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(WebhookVerificationError, match="no valid v1 signature"):
        verify(secret, sample.headers, sample.body.replace(b"}", b' ,"x":1}', 1),
               now=int(sample.at))
    with pytest.raises(WebhookVerificationError, match="outside the 300 s window"):
        verify(secret, sample.headers, sample.body,
               now=int(sample.headers["Webhook-Timestamp"]) + 301)


def test_a_delivery_out_of_attempts_is_dead_lettered_then_redelivered_once(
        settings: Settings, services: Services, demat) -> None:
    receiver = Receiver()  # not listening yet
    store = SubscriptionStore(Runtime(settings).store)
    sub = store.add(TENANT_A, receiver.url, ["document.completed"], [FLOW])
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
    first = receiver.accepted[0]
    assert verify(sub.secret, first.headers, first.body, now=int(first.at))
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
