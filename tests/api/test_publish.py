"""``publish_as`` (the SDK's ``submit_envelope``): the key is claimed first, the receipt
is kept before the message is sent (intake then never asks the store about its files),
and both are undone when it is not sent."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiokafka.errors import KafkaTimeoutError

from bus.api.documents import publish_as
from bus.client import DematClient
from bus.identity import Identity
from bus.settings import Settings
from schemas.envelope import Envelope, FileRef

pytestmark = pytest.mark.stack
TENANT = "216900910"


class Keys:
    """Idempotency keys held in memory, with ``IdempotencyKeys``' answers."""

    def __init__(self) -> None:
        self.held: dict[str, str] = {}

    def claim(self, env: Envelope) -> str | None:
        first = self.held.setdefault(env.idempotency_key or "", env.id)
        return None if first == env.id else first

    def release(self, env: Envelope) -> None:
        if self.held.get(env.idempotency_key or "") == env.id:
            del self.held[env.idempotency_key or ""]


class Receipts:
    def __init__(self) -> None:
        self.kept: set[str] = set()

    def keep(self, env: Envelope) -> None:
        self.kept.add(env.id)

    def drop(self, *doc_ids: str) -> None:
        self.kept.difference_update(doc_ids)


class Producer:
    """A Kafka producer answering ``outcome`` (an exception raises it); it notes which
    receipts were already kept when each message went."""

    def __init__(self, outcome: BaseException | None, receipts: Receipts) -> None:
        self.outcome, self.receipts, self.sent = outcome, receipts, []

    async def send_and_wait(self, topic: str, value: bytes, key: bytes) -> None:
        assert key.decode() in self.receipts.kept, "sent before its receipt was kept"
        if self.outcome is not None:
            raise self.outcome
        self.sent.append(key.decode())


def _client(settings: Settings, outcome: BaseException | None) -> DematClient:
    client = DematClient(settings, producer_name="api")
    client.runtime.__dict__.update(keys=Keys(), receipts=Receipts())  # its cached parts
    client._producer = Producer(outcome, client.runtime.receipts)  # type: ignore[assignment]
    return client


def _envelope() -> Envelope:
    return Envelope(tenant=TENANT, flow="document", metadata={}, idempotency_key="k-1",
                    producer="rh", files=[FileRef(sha256="a" * 64, size=1, name="a.pdf",
                                                  media_type="application/pdf")])


def _who() -> Identity:
    return Identity("rh", "tok-1", {TENANT: frozenset({"submit", "read-own"})})


def _door(client: DematClient) -> SimpleNamespace:
    return SimpleNamespace(client=client)


def test_a_sent_document_keeps_its_receipt_and_key(settings: Settings) -> None:
    client, env = _client(settings, None), _envelope()
    receipt = asyncio.run(publish_as(_door(client), _who(), env))
    assert receipt.doc_id == env.id and not receipt.duplicate
    assert client._producer.sent == [env.id]  # type: ignore[union-attr]
    assert client.runtime.receipts.kept == {env.id}
    assert client.runtime.keys.held == {"k-1": env.id}
    again = asyncio.run(publish_as(_door(client), _who(), _envelope()))  # the key's first
    assert again.doc_id == env.id and again.duplicate
    assert client._producer.sent == [env.id]  # type: ignore[union-attr]


def test_a_document_the_broker_did_not_take_leaves_no_receipt_and_no_key(
        settings: Settings) -> None:
    client, env = _client(settings, KafkaTimeoutError()), _envelope()
    with pytest.raises(KafkaTimeoutError):
        asyncio.run(publish_as(_door(client), _who(), env))
    assert client.runtime.receipts.kept == set()  # a retry submits anew
    assert client.runtime.keys.held == {}
