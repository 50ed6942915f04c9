"""Liveness and readiness of the service groups, and the reachability checks behind
them (``demat health``, ``demat doctor``, the compose file's healthchecks).

Every worker process writes a heartbeat, ``<var>/health/<groups>.<host>.<pid>.json``,
every ``INTERVAL`` seconds: its groups and, for each of its Kafka consumers, the
partitions assigned to it. A group is *live* on a host when a heartbeat of it there is
fresher than ``STALE`` seconds; *ready* when it is live, each of its consumers has
partitions, and the broker, the object store and the index database answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from minio.error import S3Error

from bus.objectstore import ObjectStore
from bus.settings import Settings
from connectors.private import private_dir

INTERVAL, STALE = 5.0, 30.0
TIMEOUT = 10.0  # seconds each reachability check may take
_watched: weakref.WeakSet[AIOKafkaConsumer] = weakref.WeakSet()


def watch(consumer: AIOKafkaConsumer) -> None:
    """Report ``consumer``'s assignment in this process's heartbeat."""
    _watched.add(consumer)


@dataclass
class Check:
    """One verdict, in words an operator can act on."""

    name: str
    ok: bool
    detail: str
    warning: bool = False  # not fatal: reported, readiness unaffected

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def health_dir(settings: Settings) -> Path:
    return settings.var_dir / "health"


class Heartbeat:
    """The loop writing this process's heartbeat (``bus.services.background.Loop``);
    ``consumers()`` gives the consumers of its FastStream subscribers too."""

    def __init__(self, settings: Settings, groups: list[str], consumers: Any = None) -> None:
        self.groups = groups
        self.extra = consumers or (lambda: [])
        self.path = health_dir(settings) / (
            f"{'-'.join(groups)}.{socket.gethostname()}.{os.getpid()}.json")
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        try:
            while not self._stop.is_set():
                await asyncio.to_thread(self.write)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), INTERVAL)
        finally:
            self.path.unlink(missing_ok=True)  # stopped: no longer live

    def snapshot(self) -> dict[str, Any]:
        consumers = {}
        for consumer in [*_watched, *self.extra()]:
            group = getattr(consumer, "_group_id", None) or "?"
            consumers[group] = consumers.get(group, 0) + len(consumer.assignment())
        return {"groups": self.groups, "host": socket.gethostname(), "pid": os.getpid(),
                "at": time.time(), "consumers": consumers}

    def write(self) -> None:
        private_dir(self.path.parent)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.snapshot()))
        tmp.replace(self.path)


def heartbeats(settings: Settings, group: str | None = None, host: str | None = None
               ) -> list[dict[str, Any]]:
    """The heartbeats found (of processes running ``group`` on ``host``, if given)."""
    found = []
    for path in sorted(health_dir(settings).glob("*.json")):
        with contextlib.suppress(OSError, ValueError):
            beat = json.loads(path.read_text()) | {"file": path.name}
            if (group is None or group in beat["groups"]) and host in (None, beat["host"]):
                found.append(beat)
    return found


def liveness(settings: Settings, group: str, host: str | None = None) -> Check:
    beats = heartbeats(settings, group, host)
    if not beats:
        return Check(f"{group} live", False, f"no process of group {group} has written a "
                     f"heartbeat under {health_dir(settings)} (not started, or stopped)")
    age = time.time() - max(b["at"] for b in beats)
    if age > STALE:
        return Check(f"{group} live", False, f"the last heartbeat of group {group} is "
                     f"{age:.0f} s old (the process is hung or was killed)")
    return Check(f"{group} live", True, f"heartbeat {age:.0f} s ago ({len(beats)} process(es))")


def assignment(settings: Settings, group: str, host: str | None = None) -> Check:
    beats = [b for b in heartbeats(settings, group, host) if time.time() - b["at"] <= STALE]
    idle = sorted({g for b in beats for g, n in b["consumers"].items() if not n})
    total = sum(n for b in beats for n in b["consumers"].values())
    if not beats or idle or not total:
        return Check(f"{group} consumers", False, f"consumer group(s) {', '.join(idle)} "
                     "have no partition assigned (still joining, or more members than "
                     "partitions)" if idle else f"no live process of group {group} "
                     "consumes anything")
    return Check(f"{group} consumers", True, f"{total} partition(s) assigned")


def reachability(settings: Settings) -> list[Check]:
    """Broker, object store and index database: does each answer?"""
    return [_broker(settings), _store(settings), _database(settings)]


def _broker(settings: Settings) -> Check:
    async def topics() -> list[str]:
        admin = AIOKafkaAdminClient(**settings.kafka_options, client_id="demat-health",
                                    request_timeout_ms=int(TIMEOUT * 1000))
        try:
            await asyncio.wait_for(admin.start(), TIMEOUT)
            return await asyncio.wait_for(admin.list_topics(), TIMEOUT)
        finally:
            await admin.close()

    try:
        found = asyncio.run(topics())
    except Exception as exc:  # any failure to reach it is the verdict
        return Check("broker", False, f"Kafka at {_where(settings, 'bootstrap')} does not "
                     f"answer: {type(exc).__name__} {exc}".strip())
    return Check("broker", True, f"Kafka at {settings.bootstrap}: {len(found)} topic(s)")


def _store(settings: Settings) -> Check:
    try:
        store = ObjectStore(settings)
        exists = store.client.bucket_exists(store.bucket)
    except (S3Error, OSError, ValueError) as exc:
        return Check("store", False, f"S3 at {_where(settings, 's3')} does not answer: "
                     f"{type(exc).__name__} {exc}")
    if not exists:
        return Check("store", False, f"S3 at {settings.s3} has no bucket {store.bucket} "
                     "(no bus process started yet, or the wrong DEMAT_BUCKET)")
    return Check("store", True, f"S3 at {settings.s3}: bucket {store.bucket}")


def _database(settings: Settings) -> Check:
    try:
        with psycopg.connect(settings.database, connect_timeout=int(TIMEOUT)) as db:
            db.execute("SELECT 1")
    except (psycopg.Error, OSError, ValueError) as exc:
        return Check("index", False, f"PostgreSQL does not answer: {type(exc).__name__} "
                     f"{str(exc).strip()}")
    return Check("index", True, "PostgreSQL answers")


def _where(settings: Settings, attribute: str) -> str:
    try:
        return str(getattr(settings, attribute))
    except ValueError as exc:  # not configured and no embedded stack
        return f"(none: {exc})"
