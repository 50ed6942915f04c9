"""Batch archiving, the member's side: join a batch, then read its outcome.

Design (within the bus's rules):
- the archive step of a batch-mode flow publishes a ``BatchMembership`` to the batch
  topic, keyed by its group (tenant | flow | step | batch key value), then waits;
- the ``batcher`` service (``workers.archive.batcher``) collects a group's members, closes a
  batch at N documents, M bytes or T seconds, sends ONE SIP and follows its ACK/ATR,
  writing a ``BatchRecord`` and one pointer per member to the object store;
- each member's step, polled through the delay topics (``Waiting``), reads its pointer
  and the batch record, and completes with its own archival identifier. The router
  stays the only writer of every document's state.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from aiokafka import AIOKafkaProducer

from bus.broker import encode, ensure_topics
from bus.objectstore import ObjectStore
from bus.runtime import Runtime
from schemas.archive import BatchMembership, BatchOptions, BatchRecord, TenantArchiveSettings


def batch_topic(prefix: str) -> str:
    return f"{prefix}.archive.batch"


def group_of(tenant: str, flow: str, step: str, key: str) -> str:
    """The batch group of a document: members of one group share a SIP."""
    return f"{tenant}|{flow}|{step}|{key}"


def slug(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", value).strip("-")[:60] or "x"


def batch_record_key(batch_id: str) -> str:
    return f"archive/batches/{batch_id}.json"


def batch_units_key(batch_id: str) -> str:
    """Archival identifier of every member (doc id -> identifier), once replied."""
    return f"archive/batches/{batch_id}.units.json"


def member_key(tenant: str, doc_id: str) -> str:
    return f"archive/members/{tenant}/{doc_id[:8]}/{doc_id}.json"


ACTIVE_PREFIX = "archive/active/"


def limits(options: BatchOptions, settings: TenantArchiveSettings) -> tuple[int, int, float]:
    """Documents, bytes and seconds bounding a batch: the flow's, tightened by the tenant."""
    tenant = settings.batch
    return (min(options.max_documents, tenant.max_documents or options.max_documents),
            min(options.max_bytes, tenant.max_bytes or options.max_bytes),
            min(options.max_wait_seconds,
                options.max_wait_seconds if tenant.max_wait_seconds is None
                else tenant.max_wait_seconds))


# --- publishing memberships ---------------------------------------------------------

_TOPICS_READY: set[tuple[int, str]] = set()


async def _producer(runtime: Runtime) -> AIOKafkaProducer:
    settings = runtime.settings
    key = (id(asyncio.get_running_loop()), settings.bootstrap)
    if key not in _TOPICS_READY:
        await ensure_topics(settings, [batch_topic(settings.topic_prefix)])
        _TOPICS_READY.add(key)
    return await runtime.producer()


async def publish_membership(runtime: Runtime, member: BatchMembership) -> None:
    """Send a membership to the batcher (acknowledged by the broker before returning)."""
    producer = await _producer(runtime)
    await producer.send_and_wait(batch_topic(runtime.settings.topic_prefix), encode(member),
                                 key=member.group.encode())


# --- reading outcomes ---------------------------------------------------------------


def member_batch(store: ObjectStore, tenant: str, doc_id: str) -> BatchRecord | None:
    """The batch record of a member once the batcher put it in a batch."""
    pointer = store.get_json(member_key(tenant, doc_id))
    if pointer is None:
        return None
    raw = store.get_json(batch_record_key(pointer["batch_id"]))
    return None if raw is None else BatchRecord.model_validate(raw)


def member_archival_id(store: ObjectStore, record: BatchRecord, doc_id: str) -> str | None:
    units: dict[str, Any] = store.get_json(batch_units_key(record.batch_id)) or {}
    return units.get(doc_id) or record.archival_id


def member_outcomes(record: BatchRecord, units: dict[str, str]) -> dict[str, dict[str, Any]]:
    """What the batcher's wake tells each member of its batch's outcome (its step's
    progress key ``batch``): the record without the members' list, and its own unit."""
    told = record.model_dump(mode="json") | {"members": []}
    return {d: {"batch": {"record": told, "size": len(record.members),
                          "archival_id": units.get(d) or record.archival_id}}
            for d in record.members}


def told_outcome(progress: dict[str, Any]) -> tuple[BatchRecord, int, str | None] | None:
    """The batch outcome a wake told the member (record, batch size, its archival id)."""
    told = progress.get("batch")
    if not told:
        return None
    return BatchRecord.model_validate(told["record"]), told["size"], told["archival_id"]
