"""Service group ``batcher``: many documents, one SIP.

It reads ``BatchMembership`` messages (batch topic, keyed by group), keeps one open
batch per group, and closes it at ``max_documents`` members, ``max_bytes`` or
``max_wait_seconds`` after its first member. Closing a batch:

1. drops members already placed in a batch (a re-read after a restart, a re-sent
   membership), names the batch after its first member's offset (so a crash then
   re-read closes the same batch again, found by its record);
2. writes the members list, the ``BatchRecord`` (``sealed``) and one pointer per member,
   and an ``active`` marker — only then are the members' offsets committed;
3. builds the SIP (streamed), keeps its manifest and sends it once (the archive is
   asked first); then polls the ACK and ATR, and writes the outcome in the record
   (``replied``: reply code, archival identifier of every member; or ``failed``).

Members' archive steps read their pointer and the record; the router stays the only
writer of document states.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from faststream import FastStream
from faststream.kafka import KafkaBroker
from pydantic import ValidationError

from bus.broker import ensure_topics
from bus.deadletter import is_transient, publish_dead_letter, record_letter
from bus.health import watch
from bus.objectstore import IntegrityError, ObjectMissing
from bus.plugins import REGISTRY
from bus.runtime import Runtime
from bus.services.background import run_beside
from bus.wake import wake
from connectors.errors import ConnectorError
from connectors.sae import seda
from connectors.sae.asalae import AsalaeClient
from connectors.sae.sip import SipError, SipFile
from schemas.archive import ArchiveOptions, BatchMembership, BatchRecord
from schemas.envelope import utcnow
from workers.archive import batch, mapping
from workers.archive.exchange import fetch_replies, refusal_message, send_sip

log = logging.getLogger("demat.batcher")
POLL_FIRST_S = 1.0
PLACED_MEMORY = 100_000


@dataclass
class OpenBatch:
    """Members collected for one group, not yet sealed."""

    group: str
    partition: TopicPartition
    limits: tuple[int, int, float]
    members: dict[str, tuple[BatchMembership, int]] = field(default_factory=dict)
    bytes: int = 0
    opened: float = field(default_factory=time.monotonic)

    def first_offset(self) -> int:
        return min(offset for _, offset in self.members.values())


@dataclass
class ActiveBatch:
    """A sealed batch being sent or waiting for its replies."""

    record: BatchRecord
    due: float = 0.0
    since: float = field(default_factory=time.monotonic)


class _Revoke(ConsumerRebalanceListener):
    def __init__(self, batcher: ArchiveBatcher) -> None:
        self.batcher = batcher

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        for tp in revoked:
            self.batcher.forget(tp)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        return None


class ArchiveBatcher:
    """Groups archive members into batch SIPs and follows each batch to its ATR."""

    def __init__(self, runtime: Runtime, broker: KafkaBroker | None = None) -> None:
        self.runtime = runtime
        self.broker = broker  # where poison memberships are dead-lettered
        self.store = runtime.store
        self.topic = batch.batch_topic(runtime.settings.topic_prefix)
        self.open: dict[str, OpenBatch] = {}
        self.active: dict[str, ActiveBatch] = {}
        self.consumed: dict[TopicPartition, int] = {}
        self.committed: dict[TopicPartition, int] = {}
        self.placed: OrderedDict[str, None] = OrderedDict()  # recently sealed members
        self.pool = ThreadPoolExecutor(8, thread_name_prefix="batcher")
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    def forget(self, tp: TopicPartition) -> None:
        """Partition moved away: its open batches will be rebuilt by the new owner."""
        for group in [g for g, b in self.open.items() if b.partition == tp]:
            del self.open[group]
        self.consumed.pop(tp, None)
        self.committed.pop(tp, None)

    async def run(self) -> None:
        settings = self.runtime.settings
        await ensure_topics(settings, [self.topic])
        await self._resume_active()
        consumer = AIOKafkaConsumer(
            **settings.kafka_options, group_id=f"{self.topic}.batcher",
            enable_auto_commit=False, auto_offset_reset="earliest",
            max_poll_interval_ms=900_000, client_id="demat-batcher")
        consumer.subscribe([self.topic], listener=_Revoke(self))
        watch(consumer)
        await consumer.start()
        try:
            while not self._stop.is_set():
                try:
                    await self._round(consumer)
                except Exception:  # a store or broker blip: log, wait, go on
                    log.exception("batcher round failed; retrying")
                    await asyncio.sleep(1.0)
        finally:
            await consumer.stop()
            self.pool.shutdown(wait=False)

    async def _round(self, consumer: AIOKafkaConsumer) -> None:
        records = await consumer.getmany(timeout_ms=250, max_records=2000)
        for tp, recs in records.items():
            for rec in recs:
                await self._add_or_dead_letter(tp, rec)
                self.consumed[tp] = rec.offset + 1
        await self._close_due()
        await self._commit(consumer)
        await self._poll_active()

    # --- collecting -------------------------------------------------------------------

    async def _add_or_dead_letter(self, tp: TopicPartition, rec: ConsumerRecord) -> None:
        """Add one membership; one that raises but for the infrastructure is
        dead-lettered, naming the exception (its document's step meets its deadline)."""
        try:
            await self._add(tp, rec.offset, rec.value)
        except Exception as exc:
            if is_transient(exc) or self.broker is None:
                raise
            log.error("batch membership at %s@%d dead-lettered: %s", tp, rec.offset,
                      type(exc).__name__)
            letter = record_letter(rec, exc)
            with contextlib.suppress(ValidationError):
                member = BatchMembership.model_validate_json(rec.value)
                letter = letter.model_copy(update={
                    "doc_id": member.doc_id, "tenant": member.envelope.tenant,
                    "flow": member.envelope.flow, "step": member.step})
            await publish_dead_letter(self.broker, self.runtime.topics, letter)

    async def _add(self, tp: TopicPartition, offset: int, raw: bytes) -> None:
        try:
            member = BatchMembership.model_validate_json(raw)
        except ValidationError as exc:
            log.error("undecodable batch membership at %s@%d skipped: %s", tp, offset, exc)
            return
        open_batch = self.open.get(member.group)
        if member.doc_id in self.placed or (open_batch is not None
                                            and member.doc_id in open_batch.members):
            return  # a re-sent membership (placed ones read again are dropped at sealing)
        if open_batch is None:
            try:
                limits = self._limits(member)
            except (KeyError, ValueError) as exc:
                log.error("batch membership of %s skipped: %s", member.doc_id, exc)
                return
            open_batch = self.open[member.group] = OpenBatch(member.group, tp, limits)
        max_docs, max_bytes, _ = open_batch.limits
        if open_batch.members and open_batch.bytes + member.bytes > max_bytes:
            await self._seal(open_batch)
            open_batch = self.open[member.group] = OpenBatch(member.group, tp,
                                                             open_batch.limits)
        open_batch.members[member.doc_id] = (member, offset)
        open_batch.bytes += member.bytes
        if len(open_batch.members) >= max_docs:
            await self._seal(open_batch)

    def _limits(self, member: BatchMembership) -> tuple[int, int, float]:
        env = member.envelope
        options = ArchiveOptions.model_validate(
            self.runtime.flows.get(env.flow).step(member.step).options)
        settings = mapping.tenant_settings(self.runtime.tenants.get(env.tenant))
        assert options.batch is not None
        return batch.limits(options.batch, settings)

    async def _close_due(self) -> None:
        now = time.monotonic()
        for open_batch in list(self.open.values()):
            if open_batch.members and now - open_batch.opened >= open_batch.limits[2]:
                await self._seal(open_batch)

    async def _commit(self, consumer: AIOKafkaConsumer) -> None:
        offsets = {}
        for tp, consumed in self.consumed.items():
            pending = [b.first_offset() for b in self.open.values()
                       if b.partition == tp and b.members]
            safe = min([consumed, *pending])
            if self.committed.get(tp) != safe and tp in consumer.assignment():
                offsets[tp] = safe
        if offsets:
            await consumer.commit(offsets)
            self.committed.update(offsets)

    # --- sealing ----------------------------------------------------------------------

    async def _map(self, fn: Any, items: list[Any]) -> list[Any]:
        loop = asyncio.get_running_loop()
        return await asyncio.gather(*(loop.run_in_executor(self.pool, fn, i) for i in items))

    async def _seal(self, open_batch: OpenBatch) -> None:
        """Record the batch and its members durably, then start sending it (the open
        batch is dropped only once that is done: its offsets stay uncommitted till then)."""
        members = sorted(open_batch.members.values(), key=lambda m: m[1])
        tenant = members[0][0].envelope.tenant
        placed = await self._map(
            lambda m: self.store.get_json(batch.member_key(tenant, m[0].doc_id)) is not None,
            members)
        members = [m for m, done in zip(members, placed, strict=True) if not done]
        if not members:
            self._drop(open_batch, {})
            return
        first = members[0][0]
        digest = hashlib.sha256(first.group.encode()).hexdigest()[:8]
        batch_id = (f"{batch.slug(tenant)}-{batch.slug(first.key)}-{digest}-"
                    f"p{open_batch.partition.partition}o{members[0][1]}")
        existing = await asyncio.to_thread(self.store.get_json, batch.batch_record_key(batch_id))
        if existing is not None:  # sealed before a restart: keep its members
            record = BatchRecord.model_validate(existing)
        else:
            env = first.envelope
            record = BatchRecord(
                batch_id=batch_id, transfer_id=f"DEMAT_B_{batch_id}", group=first.group,
                tenant=tenant, flow=env.flow, step=first.step, key=first.key,
                members=[m.doc_id for m, _ in members], bytes=sum(m.bytes for m, _ in members))
            await asyncio.to_thread(self.store.put_json, _members_key(batch_id),
                                    [m.model_dump(mode="json") for m, _ in members])
            await self._save(record)
        if record.status in ("sealed", "sent"):
            await asyncio.to_thread(self.store.put_json,
                                    f"{batch.ACTIVE_PREFIX}{batch_id}.json",
                                    {"batch_id": batch_id})
        await self._map(lambda doc_id: self.store.put_json(
            batch.member_key(tenant, doc_id), {"batch_id": batch_id}), record.members)
        log.info("batch %s sealed: %d documents, %d bytes", batch_id, len(record.members),
                 record.bytes)
        if record.status in ("sealed", "sent"):
            self.active[batch_id] = ActiveBatch(record)
        placed_now = set(record.members)
        for doc_id in record.members:
            self.placed[doc_id] = None
        while len(self.placed) > PLACED_MEMORY:
            self.placed.popitem(last=False)
        self._drop(open_batch, {d: m for d, m in open_batch.members.items()
                                if d not in placed_now and d in {x.doc_id for x, _ in members}})

    def _drop(self, open_batch: OpenBatch, leftover: dict[str, tuple[BatchMembership, int]]
              ) -> None:
        """The open batch is sealed: forget it, keeping members the seal did not take."""
        if self.open.get(open_batch.group) is open_batch:
            del self.open[open_batch.group]
        if leftover:
            self.open[open_batch.group] = OpenBatch(
                open_batch.group, open_batch.partition, open_batch.limits, dict(leftover),
                sum(m.bytes for m, _ in leftover.values()))

    async def _save(self, record: BatchRecord) -> None:
        await asyncio.to_thread(self.store.put_json, batch.batch_record_key(record.batch_id),
                                record.model_dump(mode="json"))

    # --- sending and following --------------------------------------------------------

    async def _resume_active(self) -> None:
        """Batches sealed by an earlier run and not answered yet."""
        def listing() -> list[str]:
            objects = self.store.client.list_objects(self.store.bucket, batch.ACTIVE_PREFIX,
                                                     recursive=True)
            return [o.object_name for o in objects]

        for name in await asyncio.to_thread(listing):
            batch_id = name.removeprefix(batch.ACTIVE_PREFIX).removesuffix(".json")
            raw = await asyncio.to_thread(self.store.get_json, batch.batch_record_key(batch_id))
            if raw is not None:
                self.active[batch_id] = ActiveBatch(BatchRecord.model_validate(raw))

    async def _poll_active(self) -> None:
        now = time.monotonic()
        for batch_id, active in list(self.active.items()):
            if active.due > now:
                continue
            try:
                done = await self._advance(active)
            except ConnectorError as exc:
                if exc.retryable:
                    log.warning("batch %s: %s (retrying)", batch_id, exc)
                    done = False
                else:
                    await self._fail(active.record, str(exc), "archive")
                    done = True
            except Exception as exc:  # the batch's own failure, unless the store is down
                if is_transient(exc):
                    raise
                await self._fail(active.record, f"{type(exc).__name__}: {exc}", "archive")
                done = True
            if done:
                del self.active[batch_id]
                await asyncio.to_thread(self.store.client.remove_object, self.store.bucket,
                                        f"{batch.ACTIVE_PREFIX}{batch_id}.json")
            else:
                waited = time.monotonic() - active.since
                sae = self._connector(active.record)
                active.due = time.monotonic() + min(max(POLL_FIRST_S, sae.poll_seconds,
                                                        waited / 2), sae.max_poll_seconds)

    async def _advance(self, active: ActiveBatch) -> bool:
        """One step of a batch's exchange; ``True`` once it has its outcome."""
        record = active.record
        sae = self._connector(record)
        settings = mapping.tenant_settings(self.runtime.tenants.get(record.tenant))
        transferring = settings.transferring_agency.identifier
        found = None
        if record.status == "sealed":
            try:
                record.manifest, found = await self._send(record, settings, sae)
            except (mapping.ArchiveConfigError, seda.SedaError, SipError, IntegrityError,
                    ObjectMissing) as exc:
                await self._fail(record, f"SIP not built: {exc}",
                                 getattr(exc, "field", "files"))
                return True
            record.status = "sent"
            await self._save(record)
            active.since = time.monotonic()
        replies = await fetch_replies(self.store, sae, record.tenant, transferring,
                                      record.transfer_id, have_ack=record.ack, found=found)
        fresh = [p for p in replies.problems if p not in record.reply_problems]
        if (replies.ack is not None and record.ack is None) or fresh:
            record.ack = record.ack or replies.ack
            record.reply_problems += fresh
            await self._save(record)
        if replies.reply is None:
            return False
        reply = replies.reply
        units = {doc_id: reply.unit_ids[mapping.unit_id(doc_id)] for doc_id in record.members
                 if mapping.unit_id(doc_id) in reply.unit_ids}
        await asyncio.to_thread(self.store.put_json, batch.batch_units_key(record.batch_id),
                                units)
        record.atr, record.reply_code = replies.atr, reply.reply_code
        record.comment = reply.comment if reply.accepted else \
            refusal_message(record.transfer_id, reply)
        record.archival_id, record.status, record.replied_at = \
            reply.archival_id, "replied", utcnow()
        await self._save(record)
        log.info("batch %s replied %s (%s)", record.batch_id, reply.reply_code,
                 reply.archival_id)
        await self._wake_members(record, f"batch {record.batch_id} replied", units)
        return True

    async def _send(self, record: BatchRecord, settings: Any, sae: AsalaeClient):  # type: ignore[no-untyped-def]
        raw = await asyncio.to_thread(self.store.get_json, _members_key(record.batch_id))
        members = [BatchMembership.model_validate(m) for m in raw or []]
        if not members:
            raise SipError(f"batch {record.batch_id}: members list is missing")
        flow = self.runtime.flows.get(record.flow)
        options = ArchiveOptions.model_validate(flow.step(record.step).options)
        assert options.batch is not None
        tenant = self.runtime.tenants.get(record.tenant)
        files: list[SipFile] = []
        units: list[seda.Unit] = []
        for m in members:
            member_files = mapping.document_files(
                m.envelope, m.files or m.envelope.files, m.journal, self.store,
                folder=m.doc_id, artefacts=m.artefacts)
            files += member_files
            units.append(mapping.document_unit(m.envelope, tenant, options, settings,
                                               [f.object_id for f in member_files]))
        env = members[0].envelope
        extra = {"batch": {"key": record.key, "size": len(members), "id": record.batch_id}}
        dates = [u.start_date for u in units if u.start_date]
        root = seda.Unit(
            id=f"u-batch-{batch.slug(record.batch_id)}",
            title=mapping.render(options.batch.title, env, tenant, extra) or record.batch_id,
            level=options.batch.description_level, children=units,
            start_date=min(dates) if dates else None, end_date=max(dates) if dates else None,
            originating_agency=units[0].originating_agency, system_id=record.batch_id)

        def make_manifest(objects: list[seda.DataObject]) -> bytes:
            return seda.build_archive_transfer(mapping.transfer(
                settings, record.transfer_id, [root], objects,
                document_type=units[0].document_type or "",
                comment=f"demat-bus: batch {record.batch_id} of {len(members)} documents"))

        manifest, found = await send_sip(self.store, sae, record.tenant,
                                         settings.transferring_agency.identifier,
                                         record.transfer_id, files, make_manifest,
                                         algorithm=settings.digest_algorithm)
        return manifest, found

    async def _fail(self, record: BatchRecord, error: str, error_field: str | None) -> None:
        log.error("batch %s failed: %s", record.batch_id, error)
        record.status, record.error, record.error_field = "failed", error, error_field
        await self._save(record)
        await self._wake_members(record, f"batch {record.batch_id} failed")

    async def _wake_members(self, record: BatchRecord, reason: str,
                            units: dict[str, str] | None = None) -> None:
        """The outcome is recorded: members finish now, from what the wake tells them,
        rather than at their next poll."""
        told = batch.member_outcomes(record, units or {})
        await wake(self.runtime, record.members, record.step, reason, progress=told)

    def _connector(self, record: BatchRecord) -> AsalaeClient:
        role = self.runtime.flows.get(record.flow).step(record.step).connector or "sae"
        return self.runtime.connector(record.tenant, role)


def _members_key(batch_id: str) -> str:
    return f"archive/batches/{batch_id}.members.json"


@REGISTRY.group("batcher")
def register_batcher(app: FastStream, broker: KafkaBroker, runtime: Runtime) -> None:
    """Service group ``batcher``: many documents' archive transfers, one SIP per batch."""
    run_beside(app, ArchiveBatcher(runtime, broker))
