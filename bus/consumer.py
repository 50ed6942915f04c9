"""One Kafka consumer, many records in flight, per-key order, at-least-once commits.

A step worker process serves every step kind with this one consumer (one group
member, whatever the number of kinds): records of one key (document id) run one
after the other, records of different keys run concurrently up to a limit, and
each partition's offset is committed up to its first record not yet done. A
handler that raises an infrastructure error is retried in place with back-off, so the
key keeps its order and the consumer never spins on a failing record; any other
exception is that record's failure, handed to ``on_poison`` (which dead-letters it),
and the consumer goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError

from bus.deadletter import is_transient
from bus.health import watch

log = logging.getLogger("demat.consumer")
Handler = Callable[[ConsumerRecord], Awaitable[None]]
PoisonHandler = Callable[[ConsumerRecord, Exception], Awaitable[None]]


@dataclass
class _Partition:
    """Records of one partition in offset order, with their done flags."""

    pending: deque[list] = field(default_factory=deque)  # [offset, done]
    tasks: set[asyncio.Task] = field(default_factory=set)
    committed: int = -1

    def done_prefix(self) -> int | None:
        """Offset to commit (next to read) once the done head records are dropped."""
        last = None
        while self.pending and self.pending[0][1]:
            last = self.pending.popleft()[0]
        return None if last is None else last + 1


class KeyOrderedConsumer:
    """Run ``handle`` for every record of ``topics`` (see the module docstring)."""

    def __init__(self, bootstrap: str, topics: list[str], group_id: str, handle: Handler, *,
                 max_in_flight: int = 64, client_id: str = "demat",
                 commit_interval: float = 0.2, revoke_grace: float = 20.0,
                 fetch_wait_ms: int = 100, security: Mapping[str, Any] | None = None,
                 on_poison: PoisonHandler | None = None) -> None:
        self.topics = topics
        self.handle = handle
        self.on_poison = on_poison
        self.commit_interval = commit_interval
        self.revoke_grace = revoke_grace
        self._config = {"bootstrap_servers": bootstrap, "group_id": group_id,
                        "client_id": client_id, "enable_auto_commit": False,
                        "auto_offset_reset": "earliest", "max_poll_interval_ms": 600_000,
                        "fetch_max_wait_ms": fetch_wait_ms, **(security or {})}
        self.consumer: AIOKafkaConsumer | None = None
        self._slots = asyncio.Semaphore(max_in_flight)
        self._parts: dict[TopicPartition, _Partition] = {}
        self._chains: dict[bytes | None, asyncio.Task] = {}
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Consume until ``stop()``; then finish what is in flight and commit it."""
        self.consumer = AIOKafkaConsumer(**self._config)  # needs the running loop
        self.consumer.subscribe(self.topics, listener=_Listener(self))
        watch(self.consumer)
        await self.consumer.start()
        committer = asyncio.create_task(self._commit_loop())
        try:
            while not self._stop.is_set():
                batch = await self.consumer.getmany(timeout_ms=100, max_records=500)
                for tp, records in batch.items():
                    for rec in records:
                        await self._dispatch(tp, rec)
        finally:
            committer.cancel()
            await self._drain(list(self._parts), self.revoke_grace)
            await self.consumer.stop()

    async def _dispatch(self, tp: TopicPartition, rec: ConsumerRecord) -> None:
        await self._slots.acquire()
        part = self._parts.setdefault(tp, _Partition())
        entry = [rec.offset, False]
        part.pending.append(entry)
        before = self._chains.get(rec.key)
        task = asyncio.create_task(self._run(rec, entry, before))
        part.tasks.add(task)
        self._chains[rec.key] = task
        task.add_done_callback(lambda t, k=rec.key, p=part: self._finished(t, k, p))

    async def _run(self, rec: ConsumerRecord, entry: list, before: asyncio.Task | None) -> None:
        try:
            if before is not None:
                with contextlib.suppress(BaseException):
                    await asyncio.shield(before)
            delay = 0.5
            while True:
                try:
                    await self.handle(rec)
                    break
                except Exception as exc:
                    if not is_transient(exc) and await self._poisoned(rec, exc):
                        break
                    # infrastructure trouble: retry this record, in order
                    log.exception("handling %s[%d]@%d failed; retrying in %.1f s",
                                  rec.topic, rec.partition, rec.offset, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 30.0)
            entry[1] = True
        finally:
            self._slots.release()

    async def _poisoned(self, rec: ConsumerRecord, exc: Exception) -> bool:
        """Hand a record that failed for good to ``on_poison``; False if there is none or
        it failed too (then the record is retried)."""
        if self.on_poison is None:
            return False
        log.error("%s[%d]@%d failed with %s: handed over as poison", rec.topic,
                  rec.partition, rec.offset, type(exc).__name__)
        try:
            await self.on_poison(rec, exc)
        except Exception:
            log.exception("poison handler failed for %s[%d]@%d", rec.topic, rec.partition,
                          rec.offset)
            return False
        return True

    def _finished(self, task: asyncio.Task, key: bytes | None, part: _Partition) -> None:
        part.tasks.discard(task)
        if self._chains.get(key) is task:
            del self._chains[key]

    async def _commit_loop(self) -> None:
        while True:
            await asyncio.sleep(self.commit_interval)
            await self._commit(list(self._parts))

    async def _commit(self, tps: list[TopicPartition]) -> None:
        offsets = {}
        for tp in tps:
            part = self._parts.get(tp)
            position = part.done_prefix() if part else None
            if position is not None and position > part.committed:
                offsets[tp] = position
                part.committed = position
        if not offsets:
            return
        try:
            assert self.consumer is not None
            await self.consumer.commit(offsets)
        except KafkaError as exc:  # e.g. rebalanced meanwhile: the records come again
            log.warning("commit of %s failed: %s", offsets, exc)

    async def _drain(self, tps: list[TopicPartition], grace: float) -> None:
        """Let the records of ``tps`` finish (``grace`` seconds at most), commit, forget."""
        tasks = [t for tp in tps if (p := self._parts.get(tp)) for t in p.tasks]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=grace)
            for task in late:
                task.cancel()
        await self._commit(tps)
        for tp in tps:
            self._parts.pop(tp, None)


class _Listener(ConsumerRebalanceListener):
    def __init__(self, owner: KeyOrderedConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.owner._drain(list(revoked), self.owner.revoke_grace)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        return None
