"""Service group ``journal``: indexes journal events and dead letters for status,
history and search (``bus.index``)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.middlewares import AckPolicy
from pydantic import ValidationError

from bus.broker import journal_lines
from bus.deadletter import (
    is_transient,
    poison_letter,
    publish_dead_letter,
    record_letter,
    source_of,
)
from bus.index import Index
from bus.runtime import Runtime
from bus.topics import Topics
from schemas.messages import DeadLetter, JournalEvent

log = logging.getLogger("demat.journal")


def register_journal(broker: KafkaBroker, runtime: Runtime) -> Index:
    index = Index(runtime.settings.database)
    topics = runtime.topics

    @broker.subscriber(topics.journal, group_id=f"{topics.journal}.index", batch=True,
                       max_records=500, batch_timeout_ms=100, ack_policy=AckPolicy.NACK_ON_ERROR,
                       auto_offset_reset="earliest")
    async def handle(body: Any, msg: KafkaMessage) -> None:
        records = [(rec, e) for rec in msg.raw_message
                   for line in journal_lines(rec.value) if (e := _parse_event(line)) is not None]
        try:
            await asyncio.to_thread(index.add, [e for _, e in records])
        except Exception as exc:
            if is_transient(exc):
                raise
            log.warning("index batch failed (%s): indexing its events one by one",
                        type(exc).__name__)
            for rec, event in records:
                await _index_alone(broker, topics, index, rec, event)

    @broker.subscriber(topics.dead_letter, group_id=f"{topics.dead_letter}.index",
                       ack_policy=AckPolicy.NACK_ON_ERROR, auto_offset_reset="earliest")
    async def handle_letter(body: Any, msg: KafkaMessage) -> None:
        try:
            letter = DeadLetter.model_validate_json(msg.body)
        except ValidationError:
            src = source_of(msg)
            letter = poison_letter(msg.body, src, ValueError("undecodable dead letter"))
        try:
            await asyncio.to_thread(index.add_dead_letter, letter)
        except Exception as exc:  # a letter cannot be dead-lettered: logged, skipped
            if is_transient(exc):
                raise
            log.error("dead letter %s not indexed: %s: %s", letter.dlq_id,
                      type(exc).__name__, exc)

    return index


async def _index_alone(broker: KafkaBroker, topics: Topics, index: Index,
                       rec: ConsumerRecord, event: JournalEvent) -> None:
    """Index one event; one the index refuses for good is dead-lettered, naming why."""
    try:
        await asyncio.to_thread(index.add, [event])
    except Exception as exc:
        if is_transient(exc):
            raise
        log.error("journal event %s not indexed: %s", event.event_id, type(exc).__name__)
        letter = record_letter(rec, exc).model_copy(
            update={"doc_id": event.doc_id, "tenant": event.tenant, "flow": event.flow,
                    "step": event.step})
        await publish_dead_letter(broker, topics, letter)


def _parse_event(raw: bytes) -> JournalEvent | None:
    try:
        return JournalEvent.model_validate_json(raw)
    except ValidationError:
        log.error("undecodable journal event skipped: %r", raw[:200])
        return None
