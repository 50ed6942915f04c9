"""Delay topics: messages that must wait (retry back-off, partner polling) wait here.

A message to delay goes to the delay topic of the largest tier not longer than
its delay, with its target topic and due time as headers. The delay service
reads each tier in order; when a partition's head is not due yet it pauses that
partition until it is (no consumer of a main topic ever waits), then forwards
the message to its target topic with the same key.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener

from bus.settings import Settings
from bus.topics import Topics

log = logging.getLogger("demat.delays")

TIERS_S = (1, 5, 30, 120, 600, 3600)
TARGET = "demat-target"
DUE = "demat-due-ms"


def delay_topics(topics: Topics) -> list[str]:
    return [topics.delay(t) for t in TIERS_S]


def tier_for(delay_s: float) -> int:
    """The largest tier (seconds) not longer than ``delay_s`` (the shortest if below)."""
    fitting = [t for t in TIERS_S if t <= delay_s]
    return fitting[-1] if fitting else TIERS_S[0]


def delay_headers(target: str, delay_s: float, now_ms: int | None = None) -> dict[str, str]:
    """Headers of a delayed message: where it goes and when (epoch milliseconds)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    return {TARGET: target, DUE: str(now_ms + int(delay_s * 1000))}


def _header(headers: list[tuple[str, bytes]] | tuple, name: str) -> str | None:
    for key, value in headers or ():
        if key == name:
            return value.decode()
    return None


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
            bootstrap_servers=self.settings.bootstrap, group_id=self.topics.delay_group,
            enable_auto_commit=False, auto_offset_reset="earliest",
            max_poll_interval_ms=600_000, client_id="demat-delays", fetch_max_wait_ms=100)
        consumer.subscribe(delay_topics(self.topics), listener=_Forget(self))
        producer = AIOKafkaProducer(bootstrap_servers=self.settings.bootstrap, acks="all",
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
            target, due = _header(rec.headers, TARGET), _header(rec.headers, DUE)
            if target is None or due is None:
                log.error("delay message without target/due headers at %s@%d dropped",
                          tp, rec.offset)
            elif int(due) > now:
                consumer.seek(tp, rec.offset)
                consumer.pause(tp)
                self.paused[tp] = int(due)
                break
            else:
                sends.append(await producer.send(target, rec.value, key=rec.key))
            last = rec.offset
        if sends:
            await asyncio.gather(*sends)
        if last is not None:
            await consumer.commit({tp: last + 1})
