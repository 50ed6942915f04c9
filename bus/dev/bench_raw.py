"""The raw transport of ``demat bench``: an aiokafka consume -> produce chain of the same
hops and payload size as the bus, the reference for the transport ratio; its forwarders
run in this process, or each in a process of its own as the bus's services do."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bus.broker import ensure_topics
from bus.settings import Settings

READY_S = 300.0  # a forwarder process starts (imports, joins) within this, even on a busy machine


async def measure_raw_transport(settings: Settings, hops: int, count: int, payload: int,
                                *, processes: bool = False) -> float:
    """Messages/s through ``hops`` chained topics by plain aiokafka forwarders (each in a
    process of its own when ``processes``)."""
    run = str(time.time_ns())
    topics = [f"{settings.topic_prefix}.bench.raw.{run}.{i}" for i in range(hops + 1)]
    await ensure_topics(settings, topics)
    producer = _producer(settings)
    await producer.start()
    forwarders = [_Forwarder(settings, topics[i], topics[i + 1], producer, f"raw-{run}-{i}")
                  for i in range(hops)]
    spawned: list[multiprocessing.process.BaseProcess] = []
    sink = _Sink(settings, topics[-1])
    try:
        if processes:
            spawned = _spawn_forwarders(settings, topics, run)
        else:
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
        for proc in spawned:
            proc.terminate()
            proc.join(10)
        await sink.stop()
        await producer.stop()


def _producer(settings: Settings) -> AIOKafkaProducer:
    return AIOKafkaProducer(**settings.kafka_options, acks="all", enable_idempotence=False,
                            linger_ms=2)


def _spawn_forwarders(settings: Settings, topics: list[str], run: str
                      ) -> list[multiprocessing.process.BaseProcess]:
    """One process per hop, each started and assigned its partitions before we return."""
    spawn = multiprocessing.get_context("spawn")
    ready = [spawn.Event() for _ in topics[:-1]]
    procs = [spawn.Process(target=_forward_forever, daemon=True,
                           args=(settings, topics[i], topics[i + 1], f"raw-{run}-{i}", ready[i]))
             for i in range(len(topics) - 1)]
    for proc in procs:
        proc.start()
    for event in ready:
        if not event.wait(READY_S):
            raise RuntimeError(f"raw chain: a forwarder process did not start within "
                               f"{READY_S:g} s")
    return procs


def _forward_forever(settings: Settings, source: str, target: str, group: str,
                     ready: object) -> None:
    """A forwarder process's body: forward until terminated."""

    async def main() -> None:
        producer = _producer(settings)
        await producer.start()
        forwarder = _Forwarder(settings, source, target, producer, group)
        await forwarder.start()
        ready.set()  # type: ignore[attr-defined]
        await asyncio.Event().wait()

    asyncio.run(main())


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
