"""The raw transport of ``demat bench``: an aiokafka consume -> produce chain of the same
hops and payload size as the bus, the reference for the transport ratio."""

from __future__ import annotations

import asyncio
import contextlib
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bus.broker import ensure_topics
from bus.settings import Settings


async def measure_raw_transport(settings: Settings, hops: int, count: int, payload: int
                                ) -> float:
    """Messages/s through ``hops`` chained topics by plain aiokafka forwarders."""
    run = str(time.time_ns())
    topics = [f"{settings.topic_prefix}.bench.raw.{run}.{i}" for i in range(hops + 1)]
    await ensure_topics(settings, topics)
    producer = AIOKafkaProducer(**settings.kafka_options, acks="all",
                                enable_idempotence=False, linger_ms=2)
    await producer.start()
    forwarders = [_Forwarder(settings, topics[i], topics[i + 1], producer, f"raw-{run}-{i}")
                  for i in range(hops)]
    sink = _Sink(settings, topics[-1])
    try:
        for f in forwarders:
            await f.start()
        await sink.start()
        body = b"x" * payload
        start = time.monotonic()
        sends = [await producer.send(topics[0], body, key=f"doc-{i}".encode())
                 for i in range(count)]
        await asyncio.gather(*sends)
        end = await sink.wait(count, 600)
        return count / (end - start)
    finally:
        for f in forwarders:
            await f.stop()
        await sink.stop()
        await producer.stop()


def _assigned_consumer(settings: Settings, topic: str, group: str) -> AIOKafkaConsumer:
    """A consumer given every partition of ``topic`` (committing under ``group``): the
    chain starts at once instead of waiting for nine group joins."""
    consumer = AIOKafkaConsumer(**settings.kafka_options, group_id=group,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                fetch_max_wait_ms=settings.fetch_wait_ms)
    consumer.assign([TopicPartition(topic, p) for p in range(settings.partitions)])
    return consumer


class _Forwarder:
    """Consume one topic, produce every record to the next (batched, committed)."""

    def __init__(self, settings: Settings, source: str, target: str,
                 producer: AIOKafkaProducer, group: str) -> None:
        self.target = target
        self.producer = producer
        self.consumer = _assigned_consumer(settings, source, group)
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        await self.consumer.start()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=100, max_records=500)
            sends = [await self.producer.send(self.target, r.value, key=r.key)
                     for records in batches.values() for r in records]
            if sends:
                await asyncio.gather(*sends)
                await self.consumer.commit()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.consumer.stop()


class _Sink:
    """Counts what reaches the last topic of the raw chain."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.consumer = _assigned_consumer(settings, topic, f"{topic}.sink")
        self.count = 0
        self.last = 0.0

    async def start(self) -> None:
        await self.consumer.start()

    async def wait(self, count: int, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while self.count < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"raw chain: {self.count} of {count} messages arrived")
            batches = await self.consumer.getmany(timeout_ms=100, max_records=2000)
            n = sum(len(r) for r in batches.values())
            if n:
                self.count += n
                self.last = time.monotonic()
        return self.last

    async def stop(self) -> None:
        await self.consumer.stop()
