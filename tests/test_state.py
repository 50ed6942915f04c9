"""The router's state cache: a loaded state is the router's to change, the cache is not."""

from __future__ import annotations

import asyncio

from bus.state import StateStore, state_key
from schemas.envelope import Envelope, FileRef
from schemas.messages import DocState, DocumentState


class _Records:
    """Just the record calls of ``ObjectStore``, in memory, counting reads."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.reads = 0

    def put_record(self, key: str, data: bytes) -> None:
        self.data[key] = data

    def get_record(self, key: str) -> bytes | None:
        self.reads += 1
        return self.data.get(key)


def _state() -> DocumentState:
    env = Envelope(tenant="216900910", flow="document", metadata={"title": "t"},
                   files=[FileRef(sha256="b" * 64, size=3, media_type="text/plain", name="a")])
    return DocumentState(doc_id=env.id, envelope=env, state=DocState.RUNNING)


def test_changes_to_a_loaded_state_reach_neither_cache_nor_store_until_saved() -> None:
    records = _Records()
    states = StateStore(records)  # type: ignore[arg-type]
    state = _state()
    asyncio.run(states.save(state))
    loaded = asyncio.run(states.load(state.doc_id))
    assert loaded == state and loaded is not state and records.reads == 0  # from the cache
    loaded.state = DocState.ERROR
    loaded.record("validate").attempts = 3
    again = asyncio.run(states.load(state.doc_id))
    assert again.state == DocState.RUNNING and again.steps == state.steps
    asyncio.run(states.save(loaded))
    assert asyncio.run(states.load(state.doc_id)).state == DocState.ERROR
    states.forget()
    from_store = asyncio.run(states.load(state.doc_id))
    assert records.reads == 1 and from_store.state == DocState.ERROR
    assert DocumentState.model_validate_json(records.data[state_key(state.doc_id)]) == loaded
