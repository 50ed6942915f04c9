"""``publish_as``: the door's receipt and idempotency record are kept while the message
is sent, and undone when it is not sent."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError

from bus.api.documents import RECEIPTS, publish_as
from bus.identity import Identity
from bus.intake import idempotency_record_key
from schemas.envelope import Envelope, FileRef

TENANT = "216900910"


class RecordStore:
    """The record calls the door makes on the object store."""

    def __init__(self) -> None:
        self.records: dict[str, bytes] = {}

    def put_json(self, key: str, value: Any) -> None:
        self.records[key] = json.dumps(value).encode()

    def get_json(self, key: str) -> Any | None:
        raw = self.records.get(key)
        return None if raw is None else json.loads(raw)

    def delete_record(self, key: str) -> None:
        self.records.pop(key, None)


class Client:
    """A client whose broker answers ``outcome`` (an exception raises it)."""

    def __init__(self, outcome: BaseException | None) -> None:
        self.runtime = SimpleNamespace(store=RecordStore())
        self.outcome, self.sent = outcome, []

    async def _in_thread(self, fn: Any, *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    async def duplicate_of(self, env: Envelope) -> str | None:
        return None

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


def test_a_sent_document_keeps_its_receipt_and_key() -> None:
    client, env = Client(None), _envelope()
    receipt = asyncio.run(publish_as(SimpleNamespace(client=client), _who(), env))
    records = client.runtime.store.records
    assert receipt.doc_id == env.id and client.sent == [env.id]
    assert f"{RECEIPTS}{env.id}.json" in records
    key = idempotency_record_key(_who().stamp(env))  # the caller's key
    assert json.loads(records[key])["doc_id"] == env.id


def test_a_document_the_broker_did_not_take_leaves_no_receipt_and_no_key() -> None:
    client, env = Client(KafkaTimeoutError()), _envelope()
    with pytest.raises(KafkaTimeoutError):
        asyncio.run(publish_as(SimpleNamespace(client=client), _who(), env))
    assert client.runtime.store.records == {}  # a retry with the key submits anew
