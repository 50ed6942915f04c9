"""Service group ``journal``: indexes journal events and dead letters for status,
history and search (``bus.index``)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.middlewares import AckPolicy
from pydantic import ValidationError

from bus.deadletter import poison_letter, source_of
from bus.index import Index
from bus.runtime import Runtime
from schemas.messages import DeadLetter, JournalEvent

log = logging.getLogger("demat.journal")


def register_journal(broker: KafkaBroker, runtime: Runtime) -> Index:
    index = Index(runtime.settings.database)
    topics = runtime.topics

    @broker.subscriber(topics.journal, group_id=f"{topics.journal}.index", batch=True,
                       max_records=500, batch_timeout_ms=100, ack_policy=AckPolicy.NACK_ON_ERROR,
                       auto_offset_reset="earliest")
    async def handle(body: Any, msg: KafkaMessage) -> None:
        events = [e for raw in msg.body if (e := _parse_event(raw)) is not None]
        await asyncio.to_thread(index.add, events)

    @broker.subscriber(topics.dead_letter, group_id=f"{topics.dead_letter}.index",
                       ack_policy=AckPolicy.NACK_ON_ERROR, auto_offset_reset="earliest")
    async def handle_letter(body: Any, msg: KafkaMessage) -> None:
        try:
            letter = DeadLetter.model_validate_json(msg.body)
        except ValidationError:
            src = source_of(msg)
            letter = poison_letter(msg.body, src, ValueError("undecodable dead letter"))
        await asyncio.to_thread(index.add_dead_letter, letter)

    return index


def _parse_event(raw: bytes) -> JournalEvent | None:
    try:
        return JournalEvent.model_validate_json(raw)
    except ValidationError:
        log.error("undecodable journal event skipped: %r", raw[:200])
        return None
