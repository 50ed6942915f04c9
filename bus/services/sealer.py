"""Wiring of the audit journal into the bus processes (``bus.services.build_app``).

- group ``sealer``: segments from the journal topic (batches), checkpoints at intervals;
- group ``router``: at start-up, the configuration digest goes to the router topic,
  where the owner of ``bus:configuration`` journals it if it changed.
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

BATCH_RECORDS, BATCH_WAIT_MS = 5000, 1000


def register_audit(app: FastStream, broker: KafkaBroker, runtime: Runtime,
                   groups: list[str]) -> None:
    if "router" in groups:
        @app.after_startup
        async def _journal_configuration() -> None:
            msg = configuration_message(runtime)
            await broker.publish(encode(msg), runtime.topics.router, key=msg.doc_id.encode())

    if "sealer" in groups:
        _register_sealer(app, broker, runtime)


def _register_sealer(app: FastStream, broker: KafkaBroker, runtime: Runtime) -> None:
    sealer = Sealer(runtime)
    topics = runtime.topics
    background: list[asyncio.Task] = []

    @broker.subscriber(topics.journal, group_id=f"{topics.journal}.sealer", batch=True,
                       max_records=BATCH_RECORDS, batch_timeout_ms=BATCH_WAIT_MS,
                       ack_policy=AckPolicy.NACK_ON_ERROR, auto_offset_reset="earliest")
    async def handle(body: Any, msg: KafkaMessage) -> None:
        await asyncio.to_thread(sealer.write_segment, list(msg.body))

    @app.on_startup
    async def _load() -> None:
        await asyncio.to_thread(sealer.prepare)
        await asyncio.to_thread(sealer.lead)

    @app.after_startup
    async def _start() -> None:
        background.append(asyncio.create_task(sealer.run()))

    @app.on_shutdown
    async def _stop() -> None:
        sealer.stop()
        await asyncio.gather(*background, return_exceptions=True)
        await asyncio.to_thread(sealer.release)
