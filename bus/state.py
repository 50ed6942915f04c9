"""Document states in the bus's PostgreSQL database, with a router-side cache.

Only the router writes them. Messages are keyed by document id, so one router instance
owns a document at a time; the cache is dropped on every rebalance. A router batch reads
the states it does not hold in one query and writes those it changed in one transaction
(the object store took a call per document each way). The cache keeps the JSON the
database holds: every load gives a fresh object the engine may change, and a transition
that is never saved leaves the cache as it was.

A bus before the table kept each state in the object store (``state/…``): a document
found there only is read from there, and its next save moves it to the database.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Collection, Iterable

import psycopg

from bus.database import Database
from bus.objectstore import ObjectStore
from schemas.messages import DocumentState

UPSERT = ("INSERT INTO document_states (doc_id, tenant, state, record, updated_at) "
          "VALUES (%s, %s, %s, %s, now()) ON CONFLICT (doc_id) DO UPDATE SET "
          "tenant = EXCLUDED.tenant, state = EXCLUDED.state, record = EXCLUDED.record, "
          "updated_at = EXCLUDED.updated_at")


def state_key(doc_id: str) -> str:
    """Where a bus before the states table kept a document's state in the object store."""
    return f"state/{doc_id[:8]}/{doc_id}.json"


class StateStore:
    """Read and write ``DocumentState`` records."""

    def __init__(self, db: Database, store: ObjectStore | None = None,
                 cache_size: int = 20_000) -> None:
        self.db = db
        self.store = store  # where older states may still be (read only)
        self.cache_size = cache_size
        self._cache: OrderedDict[str, bytes] = OrderedDict()

    def load_sync(self, doc_id: str) -> DocumentState | None:
        raw = self.records([doc_id]).get(doc_id)
        return None if raw is None else DocumentState.model_validate_json(raw)

    async def load(self, doc_id: str) -> DocumentState | None:
        return (await self.load_many([doc_id])).get(doc_id)

    async def load_many(self, doc_ids: Iterable[str], new: Collection[str] = ()
                        ) -> dict[str, DocumentState]:
        """The states of those of ``doc_ids`` that have one. ``new``: documents the
        caller knows were never routed before the table existed (no older record)."""
        found: dict[str, bytes] = {}
        missing: list[str] = []
        for doc_id in doc_ids:
            cached = self._cache.get(doc_id)
            if cached is None:
                missing.append(doc_id)
            else:
                self._cache.move_to_end(doc_id)
                found[doc_id] = cached
        if missing:
            found |= await asyncio.to_thread(self.records, missing, new)
        return {d: DocumentState.model_validate_json(raw) for d, raw in found.items()}

    def records(self, doc_ids: list[str], new: Collection[str] = ()) -> dict[str, bytes]:
        """The stored JSON of those of ``doc_ids`` that have a state (``new``: as in
        ``load_many``)."""
        rows = self.db.run(lambda db: db.execute(
            "SELECT doc_id, record FROM document_states WHERE doc_id = ANY(%s)",
            (doc_ids,)).fetchall())
        found = {doc_id: record.encode() for doc_id, record in rows}
        if self.store is not None:
            for doc_id in doc_ids:
                if doc_id not in found and doc_id not in new:
                    older = self.store.get_record(state_key(doc_id))
                    if older is not None:
                        found[doc_id] = older
        return found

    async def save(self, state: DocumentState) -> None:
        await self.save_many([state])

    async def save_many(self, states: list[DocumentState]) -> None:
        """Write ``states`` in one transaction."""
        if not states:
            return
        records = [(s.doc_id, s.model_dump_json()) for s in states]
        rows = [(s.doc_id, s.envelope.tenant if s.envelope else "", s.state.value, data)
                for s, (_, data) in zip(states, records, strict=True)]

        def write(db: psycopg.Connection) -> None:
            with db.transaction():
                db.cursor().executemany(UPSERT, rows)

        await asyncio.to_thread(self.db.run, write)
        if self.cache_size:
            for doc_id, data in records:
                self._cache[doc_id] = data.encode()
                self._cache.move_to_end(doc_id)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    def doc_ids(self) -> list[str]:
        """Every document with a state (the database's, then older object-store ones)."""
        rows = self.db.run(lambda db: db.execute(
            "SELECT doc_id FROM document_states ORDER BY doc_id").fetchall())
        found = [r[0] for r in rows]
        if self.store is not None:
            known = set(found)
            older = (k.rsplit("/", 1)[-1].removesuffix(".json")
                     for k in self.store.list_keys("state/"))
            found += sorted(d for d in older if d not in known)
        return found

    def forget(self) -> None:
        """Drop the cache (partitions moved: another instance may own them now)."""
        self._cache.clear()
