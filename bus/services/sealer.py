"""The audit journal in the bus processes (``bus.audit``).

- group ``sealer``: segments from the journal topic (batches), checkpoints at intervals;
- with group ``router``: at start-up, the configuration digest goes to the router
  topic, where the owner of ``bus:configuration`` journals it if it changed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from faststream import FastStream
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.middlewares import AckPolicy

from bus.audit.config import configuration_message
from bus.audit.sealer import Sealer
from bus.broker import encode
from bus.runtime import Runtime
from bus.services.background import run_beside

BATCH_RECORDS, BATCH_WAIT_MS = 5000, 1000


def register_configuration_digest(app: FastStream, broker: KafkaBroker,
                                  runtime: Runtime) -> None:
    """At start-up, send the configuration digest to the router (it journals changes)."""
    @app.after_startup
    async def _journal_configuration() -> None:
        msg = configuration_message(runtime)
        await broker.publish(encode(msg), runtime.topics.router, key=msg.doc_id.encode())


def register_sealer(app: FastStream, broker: KafkaBroker, runtime: Runtime) -> None:
    """Seal the journal topic into segments and checkpoints in this process."""
    sealer = Sealer(runtime)
    topics = runtime.topics

    @broker.subscriber(topics.journal, group_id=f"{topics.journal}.sealer", batch=True,
                       max_records=BATCH_RECORDS, batch_timeout_ms=BATCH_WAIT_MS,
                       ack_policy=AckPolicy.NACK_ON_ERROR, auto_offset_reset="earliest")
    async def handle(body: Any, msg: KafkaMessage) -> None:
        await asyncio.to_thread(sealer.write_segment, list(msg.body))

    @app.on_startup
    async def _load() -> None:
        await asyncio.to_thread(sealer.prepare)
        await asyncio.to_thread(sealer.lead)

    run_beside(app, sealer, then=sealer.release)
