"""The audit journal in the bus processes (``bus.audit``).

- group ``sealer``: segments from the journal topic (batches), checkpoints at intervals;
- with group ``router``: at start-up, the configuration digest goes to the router
  topic, where the owner of ``bus:configuration`` journals it if it changed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import ConsumerRecord
from faststream import FastStream
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.middlewares import AckPolicy

from bus.audit.config import configuration_message
from bus.audit.sealer import NotLeader, Sealer
from bus.broker import encode
from bus.deadletter import is_transient, publish_dead_letter, record_letter
from bus.runtime import Runtime
from bus.services.background import run_beside
from bus.services.drain import Progress, drain
from bus.topics import Topics

BATCH_RECORDS, BATCH_WAIT_MS = 5000, 1000
DRAIN_S = 20.0  # a clean stop waits at most this for the journal's tail
log = logging.getLogger("demat.sealer")


def register_configuration_digest(app: FastStream, broker: KafkaBroker,
                                  runtime: Runtime) -> None:
    """At start-up, send the configuration digest to the router (it journals changes)."""
    @app.after_startup
    async def _journal_configuration() -> None:
        msg = configuration_message(runtime)
        await broker.publish(encode(msg), runtime.topics.router, key=msg.doc_id.encode())


def register_sealer(app: FastStream, broker: KafkaBroker, runtime: Runtime) -> None:
    """Seal the journal topic into segments and checkpoints in this process; a clean
    stop first seals what the journal holds (drained), then checkpoints it."""
    sealer = Sealer(runtime)
    topics = runtime.topics
    group = f"{topics.journal}.sealer"
    progress = Progress()

    @broker.subscriber(topics.journal, group_id=group, batch=True,
                       max_records=BATCH_RECORDS, batch_timeout_ms=BATCH_WAIT_MS,
                       ack_policy=AckPolicy.NACK_ON_ERROR, auto_offset_reset="earliest")
    async def handle(body: Any, msg: KafkaMessage) -> None:
        records = list(msg.raw_message)
        await write_records(broker, topics, sealer, records)
        progress.saw(records)

    @app.on_startup
    async def _load() -> None:
        await asyncio.to_thread(sealer.prepare)
        await asyncio.to_thread(sealer.lead)

    async def seal_tail() -> None:
        if not sealer.lease_until:
            return
        try:
            await drain(runtime.settings, topics.journal, group, progress, DRAIN_S)
            await sealer.seal()
        except Exception:  # the next sealer seals it: the segments are in the store
            log.exception("journal tail not sealed at stop")

    run_beside(app, sealer, then=sealer.release, finish=seal_tail)


async def write_records(broker: KafkaBroker, topics: Topics, sealer: Sealer,
                        records: list[ConsumerRecord]) -> None:
    """Seal a batch as one segment; if it fails but for the infrastructure or another
    sealer's lease, seal its records one by one and dead-letter the one at fault."""
    try:
        await asyncio.to_thread(sealer.write_segment, [r.value for r in records])
    except Exception as exc:
        if is_transient(exc) or isinstance(exc, NotLeader):
            raise
        log.warning("sealing a batch failed (%s): sealing its records one by one",
                    type(exc).__name__)
        for rec in records:
            try:
                await asyncio.to_thread(sealer.write_segment, [rec.value])
            except Exception as one:
                if is_transient(one) or isinstance(one, NotLeader):
                    raise
                log.error("journal record %s[%d]@%d not sealed: %s", rec.topic,
                          rec.partition, rec.offset, type(one).__name__)
                await publish_dead_letter(broker, topics, record_letter(rec, one))
