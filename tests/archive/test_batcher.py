"""The batcher's grouping, bounds, replay and offset rules (in memory, no broker)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition

from bus.flows import FlowRegistry
from bus.tenants import TenantRegistry
from schemas.archive import BatchMembership, BatchRecord
from schemas.envelope import Envelope, FileRef
from workers.archive import batch
from workers.archive.batcher import ArchiveBatcher

TP = TopicPartition("demat.archive.batch", 0)
DEMO_TENANTS = Path(__file__).resolve().parents[2] / "bus" / "dev" / "tenants.yaml"


class MemoryStore:
    """The two calls the batcher makes on the object store while sealing."""

    def __init__(self) -> None:
        self.objects: dict[str, Any] = {}

    def get_json(self, key: str) -> Any | None:
        return self.objects.get(key)

    def put_json(self, key: str, value: Any) -> None:
        self.objects[key] = value


def _batcher(store: MemoryStore) -> ArchiveBatcher:
    runtime = SimpleNamespace(store=store, settings=SimpleNamespace(topic_prefix="demat"),
                              flows=FlowRegistry.load(),
                              tenants=TenantRegistry.load(DEMO_TENANTS))
    return ArchiveBatcher(runtime)  # type: ignore[arg-type]


def _member(i: int, size: int = 1000, key: str = "2026-11") -> bytes:
    env = Envelope(id=f"doc-{i:04d}", tenant="216900910", flow="document",
                   metadata={"title": f"BP {i}", "archive_batch": key},
                   files=[FileRef(sha256="a" * 64, size=size, media_type="application/pdf",
                                  name="bp.pdf")])
    journal = FileRef(sha256="b" * 64, size=10, media_type="application/json", name="j.json")
    return BatchMembership(doc_id=env.id, group=batch.group_of(env.tenant, "document",
                                                               "archive-batch", key),
                           key=key, step="archive-batch", envelope=env, journal=journal,
                           bytes=size).model_dump_json().encode()


def _records(store: MemoryStore) -> list[BatchRecord]:
    return [BatchRecord.model_validate(v) for k, v in sorted(store.objects.items())
            if k.startswith("archive/batches/") and k.endswith(".json")
            and not k.endswith((".units.json", ".members.json"))]


def test_batches_close_at_the_document_bound_and_members_learn_their_batch() -> None:
    store = MemoryStore()
    batcher = _batcher(store)  # demo tenant 216900910: at most 25 documents per SIP

    async def go() -> None:
        for i in range(60):
            await batcher._add(TP, i, _member(i))
            await batcher._add(TP, i, _member(i))  # a re-sent membership is ignored
            batcher.consumed[TP] = i + 1

    asyncio.run(go())
    records = _records(store)
    assert [len(r.members) for r in records] == [25, 25]
    assert len(batcher.open) == 1 and len(next(iter(batcher.open.values())).members) == 10
    pointer = store.get_json(batch.member_key("216900910", "doc-0030"))
    assert pointer["batch_id"] == records[1].batch_id and records[1].status == "sealed"
    assert set(batcher.active) == {r.batch_id for r in records}
    # offsets: only up to the first member of the open batch may be committed
    pending = [b.first_offset() for b in batcher.open.values()]
    assert min([batcher.consumed[TP], *pending]) == 50


def test_byte_bound_and_replay_after_a_restart_do_not_resend_anyone() -> None:
    store = MemoryStore()
    first = _batcher(store)
    big = 300 * 1024 * 1024  # two of these exceed the flow's 512 MiB bound

    async def fill(batcher: ArchiveBatcher) -> None:
        for i in range(3):
            await batcher._add(TP, i, _member(i, size=big, key="lourd"))

    asyncio.run(fill(first))
    assert [len(r.members) for r in _records(store)] == [1, 1]
    # a new batcher re-reads the same records (offsets not committed past the open batch)
    again = _batcher(store)
    asyncio.run(fill(again))
    asyncio.run(again._seal(next(iter(again.open.values()))))
    records = _records(store)
    assert sorted(len(r.members) for r in records) == [1, 1, 1]
    assert sorted(m for r in records for m in r.members) == ["doc-0000", "doc-0001", "doc-0002"]


def test_replies_kept_off_schema_are_recorded_on_the_batch(monkeypatch) -> None:
    """An ACK then an ATR that break their schema: read, kept, and their schema messages
    recorded once on the batch record (which members put in their output)."""
    from connectors.sae import seda
    from workers.archive import batcher as module
    from workers.archive.exchange import Replies

    store = MemoryStore()
    ack = FileRef(sha256="c" * 64, size=1, media_type="application/xml", name="ack.xml")
    atr = FileRef(sha256="d" * 64, size=1, media_type="application/xml", name="atr.xml")
    reply = seda.TransferReply(version="2.1", message_id="ATR-1", request_id="T1",
                               reply_code="000", date="2026-12-02", archival_id="AE_1",
                               unit_ids={"u-doc-0001": "AE_1-1"})
    answers = iter([Replies(ack=ack, problems=["ACK kept although its schema refuses it: x"]),
                    Replies(ack=ack, atr=atr, reply=reply,
                            problems=["ACK kept although its schema refuses it: x",
                                      "ATR kept although its schema refuses it: y"])])

    async def fetch(*args: Any, **kwargs: Any) -> Replies:
        return next(answers)

    calls: list[tuple[Any, ...]] = []

    async def woken(*args: Any) -> None:
        calls.append(args)

    monkeypatch.setattr(module, "fetch_replies", fetch)
    worker = _batcher(store)
    monkeypatch.setattr(worker, "_connector", lambda record: SimpleNamespace())
    monkeypatch.setattr(worker, "_wake_members", woken)
    record = BatchRecord(batch_id="B1", transfer_id="T1", group="g", tenant="216900910",
                         flow="document", step="archive-batch", key="2026-11",
                         members=["doc-0001"], status="sent")
    active = module.ActiveBatch(record)
    assert asyncio.run(worker._advance(active)) is False
    assert _records(store)[0].reply_problems == ["ACK kept although its schema refuses it: x"]
    assert asyncio.run(worker._advance(active)) is True
    saved = _records(store)[0]
    assert (saved.status, saved.reply_code, saved.archival_id) == ("replied", "000", "AE_1")
    assert saved.reply_problems == ["ACK kept although its schema refuses it: x",
                                    "ATR kept although its schema refuses it: y"]
    # the wake tells the member its outcome: it finishes without reading the record
    (_, _, units), = calls
    told = batch.member_outcomes(saved, units)["doc-0001"]
    record, size, archival_id = batch.told_outcome(told | {"group": "g"})
    assert (record.status, record.reply_code, record.atr) == ("replied", "000", atr)
    assert (size, archival_id, record.members) == (1, "AE_1-1", [])
    assert batch.told_outcome({"group": "g"}) is None  # a poll: no outcome told
