"""The sealer: journal segments and signed, time-stamped Merkle checkpoints.

It reads the journal topic in batches and writes each batch as one numbered
segment (one event per line, the published bytes). Every ``seal interval`` it
writes a checkpoint over the whole journal so far: the RFC 9162 Merkle root of
every segment line, the segments added since the previous checkpoint with their
SHA-256, and the previous checkpoint's SHA-256; the checkpoint's canonical
JSON is signed with the bus's Ed25519 key and time-stamped by an RFC 3161 TSA
(``.json`` is written last: a crash before leaves no half checkpoint).

One sealer writes at a time (segment numbers are global): it holds a lease
(``audit/sealer-lease.json`` in the main bucket, renewed every ``LEASE_S / 3``);
another sealer started meanwhile (a second ``demat run``) leaves its batches
unacknowledged, so they come again, and takes over, re-reading the journal
tail, when the lease runs out. A batch re-read after a crash becomes a second
segment with the same lines: duplicates are harmless (same event hashes) and
``demat audit verify`` accepts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bus.audit.chain import canonical
from bus.audit.merkle import MerkleAccumulator, leaf_hash
from bus.audit.signing import BusKey
from bus.audit.store import (
    CHECKPOINTS,
    KEYS,
    SEGMENTS,
    TSA_CAS,
    JournalStore,
    checkpoint_key,
    number,
    segment_key,
)
from bus.broker import journal_lines
from bus.runtime import Runtime
from bus.settings import Settings
from connectors.errors import ConnectorError
from connectors.http import resolve_url
from connectors.tsa.client import TsaClient
from schemas.envelope import utcnow
from schemas.messages import JournalEvent

log = logging.getLogger("demat.sealer")
LEASE_KEY, LEASE_S = "audit/sealer-lease.json", 60.0


class NotLeader(RuntimeError):
    """Another sealer holds the journal lease."""


def seal_interval(settings: Settings) -> float:
    """Configured, else 5 s on the embedded stack (demo) and 300 s in production."""
    if settings.seal_interval_seconds is not None:
        return settings.seal_interval_seconds
    return 5.0 if settings.kafka_bootstrap is None else 300.0


def tsa_ca_path(settings: Settings) -> Path:
    return settings.tsa_ca_file or settings.var_dir / "tsa" / "ca.pem"


def segment_lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")[:-1] if data.endswith(b"\n") else data.split(b"\n")


@dataclass
class _Tail:
    """What the sealer knows about the journal beyond its last checkpoint."""

    tree: MerkleAccumulator = field(default_factory=MerkleAccumulator)
    last_segment: int = 0
    checkpoint: int = 0
    prev_hash: str | None = None
    pending: list[dict[str, Any]] = field(default_factory=list)


class Sealer:
    """Writes segments as batches come and checkpoints at intervals."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.journal = JournalStore(runtime.settings, runtime.store)
        self.key = BusKey.load_or_create(runtime.settings)
        self.tail = _Tail()
        self._lock = threading.Lock()
        self._stop = asyncio.Event()
        self._tsa = None
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease_until = 0.0

    # --- start-up and lease ---------------------------------------------------

    def prepare(self) -> None:
        """The journal bucket (object lock if the store has it) and the public key."""
        locked = self.journal.ensure()
        log.info("journal bucket %s (object lock %s)", self.journal.bucket,
                 "on" if locked else "not supported by the store: off")
        self.journal.put(f"{KEYS}{self.key.key_id}.pem", self.key.public_pem,
                         "application/x-pem-file")

    def lead(self) -> bool:
        """Hold (take, renew) the writer lease; re-read the journal tail when taking it."""
        now = time.time()
        if self.lease_until - now > LEASE_S * 2 / 3:
            return True
        store = self.runtime.store
        lease = store.get_json(LEASE_KEY) or {}
        if lease.get("owner") not in (None, self.owner) and lease.get("until", 0) > now:
            if self.lease_until:
                log.warning("journal lease lost to %s", lease.get("owner"))
            self.lease_until = 0.0
            return False
        store.put_json(LEASE_KEY, {"owner": self.owner, "until": now + LEASE_S})
        if (store.get_json(LEASE_KEY) or {}).get("owner") != self.owner:
            return False  # another sealer wrote at the same moment: it won
        if not self.lease_until:
            with self._lock:
                self.load()
            log.info("journal lease taken by %s: %d segments, checkpoint %d", self.owner,
                     self.tail.last_segment, self.tail.checkpoint)
        self.lease_until = now + LEASE_S
        return True

    def load(self) -> None:
        """Resume from the last checkpoint and the segments written after it."""
        tail = _Tail()
        checkpoints = self.journal.numbered(CHECKPOINTS, "json")
        if checkpoints:
            data = self.journal.get(checkpoints[-1]) or b"{}"
            body = json.loads(data)
            tail.tree = MerkleAccumulator.from_state(body["tree"])
            tail.last_segment = body["last_segment"]
            tail.checkpoint = body["checkpoint"]
            tail.prev_hash = hashlib.sha256(data).hexdigest()
        sealed_up_to = tail.last_segment
        for key in self.journal.numbered(SEGMENTS, "jsonl"):
            if number(key) > sealed_up_to:
                self._add(tail, number(key), self.journal.get(key) or b"")
        self.tail = tail

    @staticmethod
    def _add(tail: _Tail, n: int, data: bytes) -> None:
        lines = segment_lines(data)
        for line in lines:
            tail.tree.append(leaf_hash(line))
        tail.pending.append({"n": n, "key": segment_key(n), "leaves": len(lines),
                             "sha256": hashlib.sha256(data).hexdigest()})
        tail.last_segment = n

    # --- segments -------------------------------------------------------------

    def write_segment(self, bodies: list[bytes]) -> int | None:
        """Store one batch of journal messages as the next segment; return its number."""
        if not self.lead():
            time.sleep(5)  # the batch is not acknowledged: it comes again
            raise NotLeader("another sealer holds the journal lease")
        lines = [line for b in bodies for line in journal_lines(b) if _is_event(line)]
        if not lines:
            return None
        data = b"\n".join(lines) + b"\n"
        with self._lock:
            n = self.tail.last_segment + 1
            self.journal.put(segment_key(n), data, "application/x-ndjson")
            self._add(self.tail, n, data)
        return n

    # --- checkpoints ----------------------------------------------------------

    async def run(self) -> None:
        """Renew the lease and checkpoint every interval, until stopped."""
        interval, last = seal_interval(self.settings), time.monotonic()
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=min(interval, LEASE_S / 3))
            try:
                if not await asyncio.to_thread(self.lead):
                    continue
                if time.monotonic() - last >= interval:
                    last = time.monotonic()
                    await self.seal()
            except (ConnectorError, RuntimeError, OSError, ValueError) as exc:
                log.error("checkpoint postponed: %s", exc)
            except Exception:  # the store answered an error: try again next time
                log.exception("checkpoint postponed")

    def stop(self) -> None:
        self._stop.set()

    def release(self) -> None:
        """Give the lease up (clean shutdown: a restarted sealer takes over at once)."""
        if self.lease_until:
            self.runtime.store.put_json(LEASE_KEY, {"owner": self.owner, "until": 0})
            self.lease_until = 0.0

    async def seal(self) -> int | None:
        """Write a checkpoint over everything written so far (nothing new: none)."""
        with self._lock:
            tail = self.tail
            if not tail.pending:
                return None
            segments = list(tail.pending)
            body = {
                "checkpoint": tail.checkpoint + 1, "prev_checkpoint": tail.prev_hash,
                "tree_size": tail.tree.size, "root": tail.tree.root().hex(),
                "tree": tail.tree.state(), "first_segment": segments[0]["n"],
                "last_segment": segments[-1]["n"], "segments": segments,
                "sealed_at": utcnow().isoformat(), "key_id": self.key.key_id,
                "hash": "RFC 9162 SHA-256, leaf = one segment line",
            }
        ca_pem = await asyncio.to_thread(tsa_ca_path(self.settings).read_bytes)
        body["tsa_ca"] = hashlib.sha256(ca_pem).hexdigest()
        data = canonical(body)
        tsr, stamp = await self._client(ca_pem).timestamp(data)
        k = body["checkpoint"]
        await asyncio.to_thread(self._write, k, data, tsr, ca_pem)
        with self._lock:
            self.tail.pending = self.tail.pending[len(segments):]
            self.tail.checkpoint, self.tail.prev_hash = k, hashlib.sha256(data).hexdigest()
        log.info("checkpoint %d: %d leaves, root %s, time-stamped %s", k, body["tree_size"],
                 body["root"][:16], stamp.gen_time.isoformat())
        return k

    def _write(self, k: int, data: bytes, tsr: bytes, ca_pem: bytes) -> None:
        self.journal.put(f"{TSA_CAS}{hashlib.sha256(ca_pem).hexdigest()}.pem", ca_pem,
                         "application/x-pem-file")
        self.journal.put(checkpoint_key(k, "sig"), self.key.sign(data))
        self.journal.put(checkpoint_key(k, "tsr"), tsr, "application/timestamp-reply")
        self.journal.put(checkpoint_key(k), data, "application/json")

    def _client(self, ca_pem: bytes) -> TsaClient:
        if self._tsa is None or self._tsa.ca_pem != ca_pem:
            self._tsa = TsaClient(resolve_url(self.settings.tsa_url, self.settings.var_dir),
                                  ca_pem=ca_pem)
        return self._tsa


def _is_event(body: bytes) -> bool:
    try:
        JournalEvent.model_validate_json(body)
    except ValidationError:
        log.error("undecodable journal message not sealed: %r", body[:200])
        return False
    return True
