"""Draining a topic before a clean stop: wait until this process's consumer has handled
every record the topic held when the stop began (the sealer seals the journal's tail
that way, so a state's last event is sealed before the bus stops)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from bus.settings import Settings

log = logging.getLogger("demat.drain")


class Progress:
    """The next offset to handle, per partition, of what a consumer has handled."""

    def __init__(self) -> None:
        self.next: dict[int, int] = {}

    def saw(self, records: Iterable[ConsumerRecord]) -> None:
        """Count ``records`` as handled."""
        for rec in records:
            self.next[rec.partition] = max(self.next.get(rec.partition, 0), rec.offset + 1)


async def topic_ends(settings: Settings, topic: str, group: str
                     ) -> tuple[dict[int, int], dict[int, int]]:
    """End offset and ``group``'s committed offset of every partition of ``topic``."""
    reader = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap, group_id=group,
                              enable_auto_commit=False, client_id="demat-drain")
    await reader.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(settings.partitions)]
        ends = await reader.end_offsets(tps)
        committed = {tp.partition: (await reader.committed(tp)) or 0 for tp in tps}
    finally:
        await reader.stop()
    return {tp.partition: end for tp, end in ends.items()}, committed


async def drain(settings: Settings, topic: str, group: str, progress: Progress,
                timeout: float) -> bool:
    """Wait (``timeout`` seconds at most) until ``progress`` or the group's commits reach
    the ends ``topic`` has now; False if it did not."""
    ends, committed = await topic_ends(settings, topic, group)
    deadline = time.monotonic() + timeout
    while True:
        behind = {p: end for p, end in ends.items()
                  if max(progress.next.get(p, 0), committed.get(p, 0)) < end}
        if not behind:
            return True
        if time.monotonic() > deadline:
            log.warning("%s not drained within %g s: partitions %s behind", topic, timeout,
                        sorted(behind))
            return False
        await asyncio.sleep(0.1)
