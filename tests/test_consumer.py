"""The key-ordered consumer on the real broker: per-key order, concurrency, commits, retries."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bus.broker import ensure_topics
from bus.consumer import KeyOrderedConsumer
from bus.dev.embedded import EmbeddedStack
from bus.settings import Settings


def test_records_of_a_key_run_in_order_others_concurrently_and_offsets_are_committed(
        stack: EmbeddedStack, settings: Settings) -> None:
    topic, group = f"test.consumer.{time.time_ns()}", f"test-consumer-{time.time_ns()}"
    keys, per_key = 8, 12
    seen: dict[str, list[int]] = defaultdict(list)
    running, peak = 0, 0
    failed_once: set[tuple[str, int]] = set()

    async def handle(rec) -> None:
        nonlocal running, peak
        key, n = rec.key.decode(), int(rec.value)
        running += 1
        peak = max(peak, running)
        try:
            await asyncio.sleep(0.02)
            if n == 5 and (key, n) not in failed_once:  # infrastructure blip: retried
                failed_once.add((key, n))
                raise ConnectionError("store unreachable")
            seen[key].append(n)
        finally:
            running -= 1

    async def go() -> dict[TopicPartition, int]:
        await ensure_topics(settings, [topic])
        producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap)
        await producer.start()
        for n in range(per_key):
            for k in range(keys):
                await producer.send(topic, str(n).encode(), key=f"k{k}".encode())
        await producer.flush()
        await producer.stop()
        consumer = KeyOrderedConsumer(settings.bootstrap, [topic], group, handle,
                                      max_in_flight=16, commit_interval=0.1)
        runner = asyncio.create_task(consumer.run())
        deadline = time.monotonic() + 120
        while sum(len(v) for v in seen.values()) < keys * per_key:
            assert time.monotonic() < deadline, f"only {dict(seen)} handled"
            await asyncio.sleep(0.05)
        consumer.stop()
        await runner
        return await _committed(settings, topic, group)

    committed = asyncio.run(go())
    assert all(seen[f"k{k}"] == list(range(per_key)) for k in range(keys)), dict(seen)
    assert peak > 1, "records of different keys never ran at the same time"
    assert len(failed_once) == keys  # every key's record 5 failed once, then succeeded
    assert sum(committed.values()) == keys * per_key


async def _committed(settings: Settings, topic: str, group: str) -> dict[TopicPartition, int]:
    reader = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap, group_id=group,
                              enable_auto_commit=False)
    await reader.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(settings.partitions)]
        return {tp: (await reader.committed(tp)) or 0 for tp in parts}
    finally:
        await reader.stop()


class _Unforeseen(Exception):
    """An exception class no handler anticipates."""


def test_a_record_failing_for_good_is_handed_to_on_poison_and_the_key_goes_on(
        stack: EmbeddedStack, settings: Settings) -> None:
    topic, group = f"test.poison.{time.time_ns()}", f"test-poison-{time.time_ns()}"
    handled: list[int] = []
    poisoned: list[tuple[int, str]] = []

    async def handle(rec) -> None:
        n = int(rec.value)
        if n == 2:
            raise _Unforeseen(f"record {n}")
        handled.append(n)

    async def on_poison(rec, exc: Exception) -> None:
        poisoned.append((int(rec.value), type(exc).__name__))

    async def go() -> dict[TopicPartition, int]:
        await ensure_topics(settings, [topic])
        producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap)
        await producer.start()
        for n in range(5):
            await producer.send(topic, str(n).encode(), key=b"one-key")
        await producer.flush()
        await producer.stop()
        consumer = KeyOrderedConsumer(settings.bootstrap, [topic], group, handle,
                                      commit_interval=0.1, on_poison=on_poison)
        runner = asyncio.create_task(consumer.run())
        deadline = time.monotonic() + 60
        while len(handled) < 4:
            assert time.monotonic() < deadline, (handled, poisoned)
            await asyncio.sleep(0.05)
        consumer.stop()
        await runner
        return await _committed(settings, topic, group)

    committed = asyncio.run(go())
    assert handled == [0, 1, 3, 4]  # the key's order kept, the bad record not retried
    assert poisoned == [(2, "_Unforeseen")]
    assert sum(committed.values()) == 5
