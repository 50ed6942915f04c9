"""Document state records in the object store, with a router-side cache.

Only the router writes them. Messages are keyed by document id, so one router
instance owns a document at a time; the cache is dropped on every rebalance. The
cache keeps the JSON the store holds: every load gives a fresh object the engine may
change, and a transition that is never saved leaves the cache as it was.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from bus.objectstore import ObjectStore
from schemas.messages import DocumentState


def state_key(doc_id: str) -> str:
    return f"state/{doc_id[:8]}/{doc_id}.json"


class StateStore:
    """Read and write ``DocumentState`` records."""

    def __init__(self, store: ObjectStore, cache_size: int = 20_000) -> None:
        self.store = store
        self.cache_size = cache_size
        self._cache: OrderedDict[str, bytes] = OrderedDict()

    def load_sync(self, doc_id: str) -> DocumentState | None:
        raw = self.store.get_record(state_key(doc_id))
        return None if raw is None else DocumentState.model_validate_json(raw)

    async def load(self, doc_id: str) -> DocumentState | None:
        cached = self._cache.get(doc_id)
        if cached is not None:
            self._cache.move_to_end(doc_id)
            return DocumentState.model_validate_json(cached)
        return await asyncio.to_thread(self.load_sync, doc_id)

    async def save(self, state: DocumentState) -> None:
        data = state.model_dump_json().encode()
        await asyncio.to_thread(self.store.put_record, state_key(state.doc_id), data)
        if self.cache_size:
            self._cache[state.doc_id] = data
            self._cache.move_to_end(state.doc_id)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    def forget(self) -> None:
        """Drop the cache (partitions moved: another instance may own them now)."""
        self._cache.clear()
