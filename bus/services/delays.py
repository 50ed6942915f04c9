"""Service group ``delays``: forwards delayed messages to their target topic when due.

It reads each delay tier (``bus.delays``); when a partition's head is not due yet it
pauses that partition until it is, so no consumer of a main topic ever waits.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener

from bus.delays import DUE, TARGET, delay_topics, header_value
from bus.health import watch
from bus.settings import Settings
from bus.topics import Topics

log = logging.getLogger("demat.delays")


class _Forget(ConsumerRebalanceListener):
    def __init__(self, service: DelayService) -> None:
        self.service = service

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        for tp in revoked:
            self.service.paused.pop(tp, None)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        return None


class DelayService:
    """Forwards delayed messages to their target topic when they are due."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topics = Topics(settings.topic_prefix)
        self.paused: dict[TopicPartition, int] = {}
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            **self.settings.kafka_options, group_id=self.topics.delay_group,
            enable_auto_commit=False, auto_offset_reset="earliest",
            max_poll_interval_ms=600_000, client_id="demat-delays", fetch_max_wait_ms=100)
        consumer.subscribe(delay_topics(self.topics), listener=_Forget(self))
        watch(consumer)
        producer = AIOKafkaProducer(**self.settings.kafka_options, acks="all",
                                    enable_idempotence=False, linger_ms=2)
        await consumer.start()
        await producer.start()
        try:
            while not self._stop.is_set():
                self._resume_due(consumer)
                batch = await consumer.getmany(timeout_ms=200, max_records=500)
                for tp, records in batch.items():
                    await self._forward(consumer, producer, tp, records)
        finally:
            await consumer.stop()
            await producer.stop()

    def _resume_due(self, consumer: AIOKafkaConsumer) -> None:
        now = int(time.time() * 1000)
        due = [tp for tp, at in self.paused.items() if at <= now]
        for tp in due:
            del self.paused[tp]
        if due:
            consumer.resume(*[tp for tp in due if tp in consumer.assignment()])

    async def _forward(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer,
                       tp: TopicPartition, records: list) -> None:
        now = int(time.time() * 1000)
        sends, last = [], None
        for rec in records:
            target, due = delay_route(rec)
            if target is None or due is None:
                log.error("delay message without valid target/due headers at %s@%d dropped",
                          tp, rec.offset)
            elif due > now:
                consumer.seek(tp, rec.offset)
                consumer.pause(tp)
                self.paused[tp] = due
                break
            else:
                sends.append(await producer.send(target, rec.value, key=rec.key))
            last = rec.offset
        if sends:
            await asyncio.gather(*sends)
        if last is not None:
            await consumer.commit({tp: last + 1})


def delay_route(rec: ConsumerRecord) -> tuple[str | None, int | None]:
    """Target topic and due time (ms) of a delayed record; ``None`` for what is missing or
    unreadable (a poison header never stops the service)."""
    try:
        target, due = header_value(rec.headers, TARGET), header_value(rec.headers, DUE)
        return target, None if due is None else int(due)
    except (UnicodeDecodeError, ValueError):
        return None, None
