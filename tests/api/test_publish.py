"""``publish_as``: the key is claimed first, the door's receipt is kept while the message
is sent, and both are undone when it is not sent."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError

from bus.api.documents import publish_as
from bus.identity import Identity
from schemas.envelope import Envelope, FileRef

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

    def drop(self, doc_id: str) -> None:
        self.kept.discard(doc_id)


class Client:
    """A client whose broker answers ``outcome`` (an exception raises it)."""

    def __init__(self, outcome: BaseException | None) -> None:
        self.runtime = SimpleNamespace(keys=Keys())
        self.outcome, self.sent = outcome, []

    async def _in_thread(self, fn: Any, *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    async def claim(self, env: Envelope) -> str | None:
        return self.runtime.keys.claim(env)

    async def publish(self, env: Envelope) -> None:
        await asyncio.sleep(0.01)  # the receipt is written meanwhile
        if self.outcome is not None:
            raise self.outcome
        self.sent.append(env.id)


def _envelope() -> Envelope:
    return Envelope(tenant=TENANT, flow="document", metadata={}, idempotency_key="k-1",
                    producer="rh", files=[FileRef(sha256="a" * 64, size=1, name="a.pdf",
                                                  media_type="application/pdf")])


def _who() -> Identity:
    return Identity("rh", "tok-1", {TENANT: frozenset({"submit", "read-own"})})


def _door(client: Client) -> SimpleNamespace:
    return SimpleNamespace(client=client, receipts=Receipts())


def test_a_sent_document_keeps_its_receipt_and_key() -> None:
    client, env = Client(None), _envelope()
    door = _door(client)
    receipt = asyncio.run(publish_as(door, _who(), env))
    assert receipt.doc_id == env.id and not receipt.duplicate and client.sent == [env.id]
    assert door.receipts.kept == {env.id} and client.runtime.keys.held == {"k-1": env.id}
    again = asyncio.run(publish_as(door, _who(), _envelope()))  # the key's first document
    assert again.doc_id == env.id and again.duplicate and client.sent == [env.id]


def test_a_document_the_broker_did_not_take_leaves_no_receipt_and_no_key() -> None:
    client, env = Client(KafkaTimeoutError()), _envelope()
    door = _door(client)
    with pytest.raises(KafkaTimeoutError):
        asyncio.run(publish_as(door, _who(), env))
    assert door.receipts.kept == set() and client.runtime.keys.held == {}  # a retry submits
