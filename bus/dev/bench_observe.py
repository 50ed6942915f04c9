"""Observing the bus during a benchmark: completions on the journal topic, RSS and CPU
seconds of every process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time

import psutil
from aiokafka import AIOKafkaConsumer, TopicPartition

from bus.broker import journal_lines
from bus.dev.bench_config import TERMINAL
from bus.settings import Settings


class JournalWatcher:
    """Follows the journal topic from its end and notes when documents finish."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = f"{settings.topic_prefix}.journal"
        self.finished: dict[str, tuple[str, float]] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(**self.settings.kafka_options,
                                    enable_auto_commit=False, fetch_max_wait_ms=50)
        await consumer.start()
        deadline = time.monotonic() + 60
        while not (parts := consumer.partitions_for_topic(self.topic) or set()):
            if time.monotonic() > deadline:
                await consumer.stop()
                raise RuntimeError(f"topic {self.topic} has no partitions")
            await asyncio.sleep(0.5)
            await consumer.topics()  # refreshes the metadata
        tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:
            await consumer.position(tp)
        self._consumer = consumer
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=100, max_records=2000)
            now = time.monotonic()
            for records in batches.values():
                for rec in records:
                    self._note(rec.value, now)

    def _note(self, raw: bytes, now: float) -> None:
        for line in journal_lines(raw):
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("type") in TERMINAL and event.get("doc_id") not in self.finished:
                self.finished[event["doc_id"]] = (event["type"], now)

    async def wait_for(self, ids: list[str], timeout: float) -> bool:
        """True once every id finished (any terminal state), False at the timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(i in self.finished for i in ids):
                return True
            await asyncio.sleep(0.02)
        return False

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()


WITH_CHILDREN = {"postgres"}  # servers whose work is done by their child processes


class RssSampler:
    """Samples the resident memory of named processes from a thread."""

    def __init__(self, pids: dict[str, int], interval: float = 0.2) -> None:
        self.pids = pids
        self.interval = interval
        self.first: dict[str, float] = {}
        self.peak: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._sample()
        self.first = dict(self.peak)
        self._cpu_start = {n: self._cpu(n, p) for n, p in self.pids.items()}
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        self.cpu = {n: round(self._cpu(n, p) - self._cpu_start[n], 1)
                    for n, p in self.pids.items()}

    @staticmethod
    def _cpu(name: str, pid: int) -> float:
        return cpu_seconds(pid, children=name in WITH_CHILDREN)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        for name, pid in self.pids.items():
            mb = rss_mb(pid)
            if mb is not None:
                self.peak[name] = max(self.peak.get(name, 0.0), mb)

    def growth(self) -> dict[str, float]:
        return {n: round(self.peak[n] - self.first.get(n, self.peak[n]), 1) for n in self.peak}


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU time of ``pid`` so far, with its live children's if
    ``children`` (PostgreSQL's backends are children of its server); 0 if it is gone."""
    try:
        found = psutil.Process(pid).children(recursive=True) if children else []
    except psutil.Error:
        found = []
    return _own_cpu(pid) + sum(_own_cpu(c.pid) for c in found)


def _own_cpu(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float | None:
    """Resident set size of ``pid`` in MiB (``None`` if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def percentile_ms(times: list[float], q: float) -> float | None:
    """The ``q`` quantile (0-1, nearest rank) of sorted ``times`` in seconds, in ms."""
    if not times:
        return None
    return round(times[min(len(times) - 1, int(q * len(times)))] * 1000, 1)
